// c10d process groups from the launcher's environment (dist.h). Note [rank failures] there says how a
// stopped rank is found and named.
#include "dist/dist.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <c10/core/impl/VirtualGuardImpl.h>
#include <c10/util/Logging.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef LOTA_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "util/check.h"
#include "util/log.h"
#include "util/strfmt.h"

namespace lota::dist {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Waits on the store and in collectives have no deadline of their own that a slow but live rank
// could hit (an evaluation shard can take long); a rank that stops is caught by the heartbeat.
constexpr milliseconds kWaitLimit = std::chrono::hours(24);
constexpr milliseconds kHeartbeatPeriod{1000};
// How long a failing collective watches the heartbeats to see which rank stopped.
constexpr milliseconds kIdentifyWindow{3000};

std::string env_str(const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr ? std::string(v) : std::string();
}

int env_int(const char* name, int lo, int hi) {
    const std::string v = env_str(name);
    char* end = nullptr;
    const long x = std::strtol(v.c_str(), &end, 10);
    LOTA_CHECK(!v.empty() && end != nullptr && *end == '\0' && x >= lo && x <= hi,
               "environment variable %s must be an integer in [%d, %d] (torchrun sets it), got '%s'", name, lo, hi,
               v.c_str());
    return static_cast<int>(x);
}

/// LOTA_DIST_TIMEOUT: seconds a peer's heartbeat may stay silent before the run stops.
seconds silent_limit() {
    const std::string v = env_str("LOTA_DIST_TIMEOUT");
    if (v.empty()) return seconds(300);
    return seconds(env_int("LOTA_DIST_TIMEOUT", 2, 7 * 24 * 3600));
}

std::string key_of(const char* kind, int rank) { return strfmt("%s/%d", kind, rank); }

std::string bytes_str(const std::vector<uint8_t>& b) { return std::string(b.begin(), b.end()); }
std::vector<uint8_t> str_bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

std::string exception_text(const std::exception& e) {
    if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) return ce->what_without_backtrace();
    return e.what();
}

std::atomic<bool> g_exiting{false};

/// Ends the process from the heartbeat thread: a collective may be blocked with no way out.
[[noreturn]] void exit_process(const std::string& message) {
    if (!g_exiting.exchange(true)) {
        std::fprintf(stderr, "lota: error: %s\n", message.c_str());
        std::fflush(stderr);
    }
    std::_Exit(1);
}

}  // namespace

struct Group::Impl {
    c10::intrusive_ptr<c10d::TCPStore> tcp;
    c10::intrusive_ptr<c10d::Store> store;  ///< "lota/" keys of this run
    c10::intrusive_ptr<c10d::Backend> backend;
    std::string backend_name = "none", command;
    std::string store_where;  ///< for messages
    seconds silent = seconds(300);
    int64_t seq = 0;          ///< numbers the store-based collectives (same order on every rank)
    bool finished = false;
    std::vector<int> stopped;  ///< ranks fail() found stopped (abort() does not wait for them)
    std::thread heartbeat;
    std::mutex mu;
    std::condition_variable cv;
    bool stopping = false;

    c10::intrusive_ptr<c10d::Store> prefixed(const c10::intrusive_ptr<c10d::Store>& base) const;
    void stop_heartbeat() {
        {
            std::lock_guard<std::mutex> lock(mu);
            stopping = true;
        }
        cv.notify_all();
        if (heartbeat.joinable()) heartbeat.join();
    }
};

Launch launch_from_env() {
    Launch l;
    if (env_str("WORLD_SIZE").empty()) {
        LOTA_CHECK(env_str("RANK").empty(), "RANK is set but WORLD_SIZE is not; start the ranks with torchrun "
                                            "(docs/distributed.md) or set both");
        return l;
    }
    l.world_size = env_int("WORLD_SIZE", 1, 1 << 20);
    if (l.world_size == 1 && env_str("RANK").empty()) return l;
    l.rank = env_int("RANK", 0, l.world_size - 1);
    l.local_rank = env_str("LOCAL_RANK").empty() ? 0 : env_int("LOCAL_RANK", 0, 1 << 16);
    if (l.world_size == 1) return l;
    l.master_addr = env_str("MASTER_ADDR");
    LOTA_CHECK(!l.master_addr.empty(), "WORLD_SIZE is %d but MASTER_ADDR is not set (torchrun sets it; "
                                       "docs/distributed.md)", l.world_size);
    l.master_port = env_int("MASTER_PORT", 1, 65535);
    l.agent_store = env_str("TORCHELASTIC_USE_AGENT_STORE") == "True";
    if (l.agent_store) {
        const std::string attempt = env_str("TORCHELASTIC_RESTART_COUNT");
        l.store_prefix = "/worker/attempt_" + (attempt.empty() ? std::string("0") : attempt);
    }
    return l;
}

std::pair<int64_t, int64_t> shard(int64_t n, int rank, int world) {
    LOTA_ASSERT(world >= 1 && rank >= 0 && rank < world && n >= 0, "shard(%lld, %d, %d)", (long long)n, rank, world);
    const int64_t base = n / world, extra = n % world;
    const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
    return {begin, begin + base + (rank < extra ? 1 : 0)};
}

c10::intrusive_ptr<c10d::Store> Group::Impl::prefixed(const c10::intrusive_ptr<c10d::Store>& base) const {
    return c10::make_intrusive<c10d::PrefixStore>("lota", base);
}

Group::Group(Launch launch) : launch_(std::move(launch)), impl_(std::make_unique<Impl>()) {}

std::unique_ptr<Group> Group::single() { return std::unique_ptr<Group>(new Group(Launch{})); }

std::unique_ptr<Group> Group::join(const std::string& device, const std::string& command) {
    std::unique_ptr<Group> g(new Group(launch_from_env()));
    g->impl_->command = command;
    if (g->single_process()) return g;
    const Launch& l = g->launch_;
    Impl& im = *g->impl_;
    im.silent = silent_limit();
    std::signal(SIGPIPE, SIG_IGN);  // Note [rank failures]: a dead peer's socket must fail the write, not the process
    // c10d logs every failed store call with a C++ backtrace; when a rank stops, the others' messages
    // (Note [rank failures]) say what happened. TORCH_CPP_LOG_LEVEL, when set, still decides.
    if (env_str("TORCH_CPP_LOG_LEVEL").empty()) {
        FLAGS_caffe2_log_level = 2;  // errors only
        c10::UpdateLoggingLevelsFromFlags();
    }
    const bool cuda = device == "cuda";
    LOTA_CHECK(cuda || device == "cpu", "%s: distributed runs need --device cpu or cuda, got '%s'", command.c_str(),
               device.c_str());
#ifndef LOTA_WITH_NCCL
    LOTA_CHECK(!cuda, "%s: %d ranks on CUDA need NCCL, and this lota was built against a LibTorch without "
                      "ProcessGroupNCCL (a CPU build, or CUDA without NCCL); use --device cpu (Gloo) or build lota "
                      "with a CUDA PyTorch (docs/distributed.md)", command.c_str(), l.world_size);
#endif
    if (cuda) {
        c10::impl::VirtualGuardImpl guard(c10::DeviceType::CUDA);
        const int n = static_cast<int>(guard.deviceCount());
        LOTA_CHECK(l.local_rank < n, "%s: rank %d has LOCAL_RANK %d but this node has %d CUDA device(s); start at most "
                                     "%d ranks per node (torchrun --nproc-per-node)", command.c_str(), l.rank,
                   l.local_rank, n, n);
        guard.setDevice(c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(l.local_rank)));
    }
    im.store_where = strfmt("%s:%d (%s)", l.master_addr.c_str(), l.master_port,
                            l.agent_store ? "torchrun's store" : "held by rank 0");
    try {
        c10d::TCPStoreOptions so;
        so.port = static_cast<uint16_t>(l.master_port);
        so.isServer = l.rank == 0 && !l.agent_store;
        so.numWorkers = static_cast<size_t>(l.world_size);
        so.waitWorkers = false;
        so.timeout = kWaitLimit;
        im.tcp = c10::make_intrusive<c10d::TCPStore>(l.master_addr, so);
    } catch (const std::exception& e) {
        LOTA_FAIL("%s: rank %d could not reach the rendezvous store at %s: %s", command.c_str(), l.rank,
                  im.store_where.c_str(), exception_text(e).c_str());
    }
    c10::intrusive_ptr<c10d::Store> base = im.tcp;
    if (l.agent_store) base = c10::make_intrusive<c10d::PrefixStore>(l.store_prefix, base);
    im.store = im.prefixed(base);

    // Heartbeat and watch (Note [rank failures]); its own connection, so it never waits behind the
    // main thread's store calls.
    im.heartbeat = std::thread([gp = g.get(), base_prefix = l.store_prefix] {
        Impl& h = *gp->impl_;
        const Launch& hl = gp->launch_;
        c10::intrusive_ptr<c10d::Store> s;
        try {
            c10::intrusive_ptr<c10d::Store> b = h.tcp->clone();
            if (hl.agent_store) b = c10::make_intrusive<c10d::PrefixStore>(base_prefix, b);
            s = h.prefixed(b);
        } catch (const std::exception& e) {
            exit_process(strfmt("%s: rank %d lost the rendezvous store at %s: %s", h.command.c_str(), hl.rank,
                                h.store_where.c_str(), exception_text(e).c_str()));
        }
        std::vector<int64_t> seen(hl.world_size, -1);
        std::vector<Clock::time_point> moved(hl.world_size, Clock::now());
        std::unique_lock<std::mutex> lock(h.mu);
        while (!h.stopping) {
            lock.unlock();
            try {
                s->add(key_of("hb", hl.rank), 1);
                if (s->add("failures", 0) > 0)
                    for (int r = 0; r < hl.world_size; ++r)
                        if (r != hl.rank && s->check({key_of("failed", r)})) {
                            const std::string msg = bytes_str(s->get(key_of("failed", r)));
                            s->set(key_of("seen", hl.rank), str_bytes("1"));
                            exit_process(strfmt("%s: rank %d of %d failed: %s; stopping rank %d", h.command.c_str(),
                                                r, hl.world_size, msg.c_str(), hl.rank));
                        }
                for (int r = 0; r < hl.world_size; ++r) {
                    if (r == hl.rank) continue;
                    const int64_t v = s->add(key_of("hb", r), 0);
                    const auto now = Clock::now();
                    if (v != seen[r]) {
                        seen[r] = v;
                        moved[r] = now;
                    } else if (now - moved[r] > h.silent && !s->check({key_of("done", r)})) {
                        const std::string why =
                            s->check({key_of("failed", r)})
                                ? "failed: " + bytes_str(s->get(key_of("failed", r)))
                                : strfmt("stopped: no heartbeat for %lld s (killed, crashed or hung; "
                                         "LOTA_DIST_TIMEOUT)",
                                         (long long)std::chrono::duration_cast<seconds>(now - moved[r]).count());
                        const std::string msg = strfmt("%s: rank %d of %d %s; stopping rank %d", h.command.c_str(),
                                                       r, hl.world_size, why.c_str(), hl.rank);
                        // Tell the ranks that are still running (they may be blocked in a collective).
                        s->set(key_of("failed", hl.rank), str_bytes(msg));
                        s->add("failures", 1);
                        if (hl.rank == 0 && !hl.agent_store) {
                            std::vector<std::string> keys;
                            for (int q = 1; q < hl.world_size; ++q)
                                if (q != r) keys.push_back(key_of("seen", q));
                            try {
                                if (!keys.empty()) s->wait(keys, milliseconds(10000));
                            } catch (const std::exception&) {
                            }
                        }
                        exit_process(msg);
                    }
                }
            } catch (const std::exception& e) {
                lock.lock();
                if (h.stopping) break;
                exit_process(strfmt("%s: rank %d lost the rendezvous store at %s%s: %s", h.command.c_str(), hl.rank,
                                    h.store_where.c_str(),
                                    hl.agent_store ? "" : "; rank 0, which holds it, stopped",
                                    exception_text(e).c_str()));
            }
            lock.lock();
            h.cv.wait_for(lock, kHeartbeatPeriod, [&] { return h.stopping; });
        }
    });
    try {
        const c10::intrusive_ptr<c10d::Store> pg_store =
            c10::make_intrusive<c10d::PrefixStore>(cuda ? "nccl" : "gloo", base);
        if (cuda) {
#ifdef LOTA_WITH_NCCL
            auto opts = c10d::ProcessGroupNCCL::Options::create();
            opts->timeout = kWaitLimit;
            im.backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(pg_store, l.rank, l.world_size, opts);
            im.backend_name = "nccl";
#endif
        } else {
            auto opts = c10d::ProcessGroupGloo::Options::create(kWaitLimit);
            const std::string ifnames = env_str("GLOO_SOCKET_IFNAME");
            if (ifnames.empty()) {
                opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
            } else {
                size_t at = 0;
                while (at <= ifnames.size()) {
                    const size_t comma = std::min(ifnames.find(',', at), ifnames.size());
                    if (comma > at)
                        opts->devices.push_back(
                            c10d::ProcessGroupGloo::createDeviceForInterface(ifnames.substr(at, comma - at)));
                    at = comma + 1;
                }
            }
            im.backend = c10::make_intrusive<c10d::ProcessGroupGloo>(pg_store, l.rank, l.world_size, opts);
            im.backend_name = "gloo";
        }
    } catch (const lota::Error&) {
        throw;
    } catch (const std::exception& e) {
        g->fail("starting the " + std::string(cuda ? "NCCL" : "Gloo") + " process group", exception_text(e));
    }
    LOTA_LOG_INFO("%s: rank %d of %d (local rank %d), %s, store %s", command.c_str(), l.rank, l.world_size,
                  l.local_rank, im.backend_name.c_str(), im.store_where.c_str());
    return g;
}

Group::~Group() {
    if (impl_) impl_->stop_heartbeat();
}

const char* Group::backend() const { return impl_->backend_name.c_str(); }

void Group::fail(const std::string& what, const std::string& cause) {
    Impl& im = *impl_;
    std::string who;
    try {
        std::vector<std::string> failed, stopped;
        for (int r = 0; r < size(); ++r)
            if (r != rank() && im.store->check({key_of("failed", r)}))
                failed.push_back(strfmt("rank %d failed: %s", r, bytes_str(im.store->get(key_of("failed", r))).c_str()));
        if (failed.empty()) {
            auto beats = [&] {
                std::vector<int64_t> v(size());
                for (int r = 0; r < size(); ++r) v[r] = r == rank() ? 0 : im.store->add(key_of("hb", r), 0);
                return v;
            };
            const std::vector<int64_t> a = beats();
            std::this_thread::sleep_for(kIdentifyWindow);
            const std::vector<int64_t> b = beats();
            for (int r = 0; r < size(); ++r)
                if (r != rank() && a[r] == b[r] && !im.store->check({key_of("done", r)})) {
                    im.stopped.push_back(r);
                    stopped.push_back(strfmt("rank %d stopped (no heartbeat for %lld s: killed, crashed or hung)", r,
                                             (long long)std::chrono::duration_cast<seconds>(kIdentifyWindow).count()));
                }
        }
        for (const auto& v : {failed, stopped})
            for (const std::string& s : v) who += (who.empty() ? "" : "; ") + s;
        if (who.empty()) who = "every other rank is still running (a network or backend error?)";
    } catch (const std::exception&) {
        who = launch_.agent_store ? "torchrun's store at " + im.store_where + " is gone (the launcher stopped?)"
                                  : "rank 0 stopped (the store it held at " + im.store_where + " is gone)";
    }
    LOTA_FAIL("%s: %s, during %s on rank %d of %d; stopping (%s: %s)", im.command.c_str(), who.c_str(), what.c_str(),
              rank(), size(), im.backend_name.c_str(), cause.c_str());
}

void Pending::wait() {
    if (group_ == nullptr) return;
    Group* g = group_;
    group_ = nullptr;
    try {
        static_cast<c10d::Work*>(work_.get())->wait();
    } catch (const lota::Error&) {
        throw;
    } catch (const std::exception& e) {
        g->fail(what_, exception_text(e));
    }
    work_.reset();
}

Pending Group::all_reduce_sum_async(const at::Tensor& t, const std::string& what) {
    Pending p;
    if (single_process()) return p;
    LOTA_ASSERT(t.is_contiguous(), "all-reduce of a non-contiguous tensor (%s)", what.c_str());
    try {
        std::vector<at::Tensor> ts{t};
        c10d::AllreduceOptions opts;
        opts.reduceOp = c10d::ReduceOp::SUM;
        c10::intrusive_ptr<c10d::Work> w = impl_->backend->allreduce(ts, opts);
        // Hold the work through a shared_ptr<void> so that dist.h needs no c10d header.
        p.work_ = std::shared_ptr<void>(w.release(), [](void* ptr) {
            c10::intrusive_ptr<c10d::Work>::reclaim(static_cast<c10d::Work*>(ptr));
        });
    } catch (const std::exception& e) {
        fail(what, exception_text(e));
    }
    p.group_ = this;
    p.what_ = what;
    return p;
}

void Group::all_reduce_sum(const at::Tensor& t, const std::string& what) { all_reduce_sum_async(t, what).wait(); }

std::vector<std::string> Group::all_gather(const std::string& mine, const std::string& what) {
    if (single_process()) return {mine};
    std::vector<std::string> out(size());
    const std::string base = strfmt("gather/%lld/", (long long)impl_->seq++);
    try {
        impl_->store->set(base + std::to_string(rank()), str_bytes(mine));
        for (int r = 0; r < size(); ++r) out[r] = r == rank() ? mine : bytes_str(impl_->store->get(base + std::to_string(r)));
    } catch (const std::exception& e) {
        fail(what, exception_text(e));
    }
    return out;
}

std::vector<double> Group::all_gather_doubles(const std::vector<double>& mine, const std::string& what) {
    if (single_process()) return mine;
    const std::string bytes(reinterpret_cast<const char*>(mine.data()), mine.size() * sizeof(double));
    std::vector<double> out;
    for (const std::string& part : all_gather(bytes, what)) {
        LOTA_ASSERT(part.size() % sizeof(double) == 0, "gathered %zu bytes, not doubles (%s)", part.size(),
                    what.c_str());
        const size_t n = part.size() / sizeof(double);
        out.resize(out.size() + n);
        std::memcpy(out.data() + out.size() - n, part.data(), part.size());
    }
    return out;
}

void Group::check_same(const std::string& what, const std::string& value) {
    const std::vector<std::string> all = all_gather(value, "comparing " + what);
    for (int r = 1; r < size(); ++r)
        LOTA_CHECK(all[r] == all[0],
                   "%s: ranks disagree on %s: rank %d has %s, rank 0 has %s; every rank must run the same command on the "
                   "same files",
                   impl_->command.c_str(), what.c_str(), r, all[r].c_str(), all[0].c_str());
}

void Group::barrier(const std::string& what) {
    if (single_process()) return;
    const std::string key = strfmt("barrier/%lld", (long long)impl_->seq++);
    try {
        if (impl_->store->add(key, 1) == size()) impl_->store->set(key + "/all", str_bytes("1"));
        impl_->store->wait({key + "/all"});
    } catch (const std::exception& e) {
        fail(what, exception_text(e));
    }
}

void Group::finish() {
    if (single_process() || impl_->finished) return;
    barrier("the final barrier");
    impl_->finished = true;
    impl_->stop_heartbeat();
    try {
        impl_->store->set(key_of("done", rank()), str_bytes("1"));
        if (root() && !launch_.agent_store) {
            std::vector<std::string> keys;
            for (int r = 0; r < size(); ++r) keys.push_back(key_of("done", r));
            impl_->store->wait(keys);
        }
    } catch (const std::exception& e) {
        LOTA_LOG_WARN("%s: rank %d: the store went away after the run had finished: %s", impl_->command.c_str(), rank(),
                      exception_text(e).c_str());
    }
}

void Group::abort(const std::string& message) {
    if (single_process() || impl_->finished || !impl_->store) return;
    impl_->finished = true;
    impl_->stop_heartbeat();
    try {
        impl_->store->set(key_of("failed", rank()), str_bytes(message));
        impl_->store->add("failures", 1);
        if (root() && !launch_.agent_store) {  // keep the store up until the others have read it
            std::vector<std::string> keys;
            for (int r = 1; r < size(); ++r)
                if (std::find(impl_->stopped.begin(), impl_->stopped.end(), r) == impl_->stopped.end())
                    keys.push_back(key_of("seen", r));
            if (!keys.empty()) impl_->store->wait(keys, milliseconds(10000));
        }
    } catch (const std::exception&) {
    }
}

std::string digest(const std::string& bytes) {
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char c : bytes) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    return strfmt("%016llx", (unsigned long long)h);
}

std::string file_digest(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return "missing";
    std::ifstream in(path, std::ios::binary);
    if (!in) return "missing";
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return digest(bytes);
}

std::string dir_digest(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(path, ec)) return file_digest(path);
    std::vector<fs::path> files;  // relative to `path`, subfolders included (MMLU's dev/ and test/)
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
        if (it->is_regular_file(ec)) files.push_back(it->path().lexically_relative(path));
    std::sort(files.begin(), files.end());
    std::string all;
    for (const fs::path& rel : files) {
        const fs::path f = fs::path(path) / rel;
        const uintmax_t size = fs::file_size(f, ec);
        all += rel.generic_string() + "\n" + std::to_string(size) + "\n";
        std::ifstream in(f, std::ios::binary);
        const size_t head = (size_t)std::min<uintmax_t>(size, 1 << 20), tail = (size_t)std::min<uintmax_t>(size - head, 1 << 16);
        std::string buf(head, '\0');
        in.read(buf.data(), (std::streamsize)head);
        all += digest(buf);
        if (tail > 0) {
            buf.assign(tail, '\0');
            in.seekg((std::streamoff)(size - tail));
            in.read(buf.data(), (std::streamsize)tail);
            all += digest(buf);
        }
    }
    return digest(all);
}

}  // namespace lota::dist
