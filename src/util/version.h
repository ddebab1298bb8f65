// lota's version string (what `lota version` prints and what checkpoints record as their producer).
#pragma once

namespace lota {

inline constexpr const char* VERSION = "0.1.0";

}  // namespace lota
