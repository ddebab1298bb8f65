// Several processes, one per device: PyTorch's c10d from LibTorch, started by torchrun or any launcher
// that sets torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). The
// rendezvous is a c10d TCPStore (rank 0 holds it; under torchrun the launcher's own store is used, as
// torch.distributed does), the collectives are ProcessGroupGloo on the CPU and ProcessGroupNCCL on
// CUDA (when the LibTorch was built with it). No transport of our own: this file only starts them,
// names the rank that stopped when something fails, and adds the few helpers the commands need.
// docs/distributed.md says how to launch; train/eval/calibrate use it (data parallel).
//
// Note [rank failures]
// Every rank runs a heartbeat thread (its own store connection): it bumps "hb/<rank>" once a second
// and watches the others'. A collective that fails (Gloo: a peer's connection closed) throws
// lota::Error naming the rank(s) whose heartbeat stopped, or the message a rank left in the store
// when it failed with an error of its own (Group::abort). A collective can
// also block with no error (NCCL waiting for a dead peer): the heartbeat thread then ends the
// process itself once a peer has been silent for LOTA_DIST_TIMEOUT seconds (default 300), with the
// same message, and at once when a peer left a failure message (Group::abort, which the CLI calls
// with the error that stops a rank). Ranks that finish cleanly say so first ("done/<rank>"), so a rank that ends early is
// not taken for a dead one. Rank 0, when it holds the store, leaves only after every rank is done.
// A rank ignores SIGPIPE: Gloo writes to its peers with writev(), and a write to the socket of a
// peer that was killed would otherwise end the process silently instead of failing the collective.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace lota::dist {

/// What the launcher set. world_size 1 (no WORLD_SIZE) is a single process.
struct Launch {
    int rank = 0, world_size = 1, local_rank = 0;
    std::string master_addr;
    int master_port = 0;
    bool agent_store = false;  ///< torchrun's agent holds the store (TORCHELASTIC_USE_AGENT_STORE)
    std::string store_prefix;  ///< "/worker/attempt_<n>" under torchrun, as torch.distributed uses
};

/// Reads the launcher's variables; throws lota::Error naming the variable when one is missing or
/// out of range (e.g. RANK without WORLD_SIZE, RANK >= WORLD_SIZE).
Launch launch_from_env();

/// Items [begin, end) of `rank` when n items are split into `world` contiguous parts, the first
/// n % world parts one item longer. Every item belongs to exactly one rank, in order.
std::pair<int64_t, int64_t> shard(int64_t n, int rank, int world);

class Group;

/// An all-reduce in flight; wait() blocks until the sum is in the tensor (CUDA: orders the current
/// stream after it) and throws lota::Error naming the rank that stopped.
class Pending {
  public:
    Pending() = default;
    void wait();
    bool active() const { return group_ != nullptr; }

  private:
    friend class Group;
    Group* group_ = nullptr;
    std::shared_ptr<void> work_;
    std::string what_;
};

/// The ranks of one run. A group of one (world size 1) has no store, no threads and no backend:
/// every collective returns at once, so callers need no separate single-process path.
class Group {
  public:
    /// Joins the run described by the environment: `device` "cpu" (Gloo) or "cuda" (NCCL; sets the
    /// current CUDA device to LOCAL_RANK). `command` (e.g. "train") appears in messages. Throws
    /// lota::Error when the rendezvous fails or NCCL is not in this LibTorch.
    static std::unique_ptr<Group> join(const std::string& device, const std::string& command);
    /// A group of one, whatever the environment says.
    static std::unique_ptr<Group> single();
    /// Without finish() (an error unwinds): stops the heartbeat and leaves; the other ranks report
    /// this rank as stopped.
    ~Group();
    Group(const Group&) = delete;
    Group& operator=(const Group&) = delete;

    int rank() const { return launch_.rank; }
    int size() const { return launch_.world_size; }
    int local_rank() const { return launch_.local_rank; }
    bool root() const { return launch_.rank == 0; }
    bool single_process() const { return launch_.world_size == 1; }
    const char* backend() const;  ///< "gloo", "nccl" or "none"

    /// Sums `t` (contiguous, on the group's device; float64 is exact for sums of float32 values of
    /// similar size, see Note [exact gradient sums] in train/grad_reduce.h) over the ranks in place.
    /// `what` names it in messages. Collectives must be called in the same order on every rank.
    Pending all_reduce_sum_async(const at::Tensor& t, const std::string& what);
    void all_reduce_sum(const at::Tensor& t, const std::string& what);
    /// Every rank's `mine`, in rank order (through the store: for results and digests, not tensors).
    std::vector<std::string> all_gather(const std::string& mine, const std::string& what);
    /// Every rank's `mine`, concatenated in rank order: with contiguous shards (shard()), item order.
    /// Values travel as their bytes, so a sum over the result in item order is one process's sum.
    std::vector<double> all_gather_doubles(const std::vector<double>& mine, const std::string& what);
    /// Throws lota::Error when any rank's `value` differs from rank 0's, naming the rank and `what`
    /// (e.g. "the model (hash of config and tensor headers)").
    void check_same(const std::string& what, const std::string& value);
    /// Waits for every rank.
    void barrier(const std::string& what);
    /// The clean end: a barrier, then "done"; rank 0 (when it holds the store) waits for every rank's
    /// "done" before it returns. Call once, after the last collective and the last write.
    void finish();
    /// This rank failed with `message` (its error): leaves it in the store, where the other ranks'
    /// heartbeat threads find it and stop with it; rank 0, when it holds the store, waits (at most
    /// 10 s) until they have read it. Best effort: never throws.
    void abort(const std::string& message);

  private:
    friend class Pending;
    struct Impl;
    explicit Group(Launch launch);
    [[noreturn]] void fail(const std::string& what, const std::string& cause);
    Launch launch_;
    std::unique_ptr<Impl> impl_;
};

/// Hex digest (FNV-1a 64) of bytes: for check_same.
std::string digest(const std::string& bytes);
/// Digest of a file's bytes; a missing file (or not a regular file) digests as "missing".
std::string file_digest(const std::string& path);
/// Digest of a directory (a model, MMLU's folder): every regular file's path (subfolders included),
/// its size and its first MiB and last 64 KiB (config, safetensors headers and tails), not the whole
/// of a multi-GB file. A path that is not a directory digests as file_digest.
std::string dir_digest(const std::string& path);

}  // namespace lota::dist
