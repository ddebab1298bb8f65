// Tests for the util layer: message formatting and error types.
#include <gtest/gtest.h>

#include "util/check.h"

TEST(Util, StrfmtFormatsAndShapes) {
    EXPECT_EQ(lota::strfmt("%s=%d", "x", 3), "x=3");
    EXPECT_EQ(lota::shape_str({2, 3}), "[2, 3]");
    EXPECT_EQ(lota::shape_str({}), "[]");
}

TEST(Util, CheckThrowsLotaErrorWithMessage) {
    try {
        LOTA_CHECK(1 == 2, "file %s: bad %d", "a.bin", 7);
        FAIL() << "no throw";
    } catch (const lota::Error& e) {
        EXPECT_STREQ(e.what(), "file a.bin: bad 7");
    }
}
