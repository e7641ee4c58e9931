#pragma once
// Checkpoints, signals and --resume for the engine entries' step loops (output.checkpoint_every,
// kinflow-simulate DECK --resume).
//
// Signals. SIGTERM or SIGUSR1 (Slurm's --signal; Open MPI's mpirun forwards SIGUSR1 to every rank)
// asks for a checkpoint at the next step boundary — every rank agrees on the step through one
// small allreduce per step — after which the run exits 0 with a line saying how to continue. A
// second SIGTERM, or SIGINT, ends the process at once; rank 0 first renames the partial output
// FILE.tmp to FILE.incomplete (rename(2) is async-signal-safe), so nothing written is lost.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <unistd.h>

#include "driver_main.hpp"
#include "kinflow/core/options.hpp"
#include "kinflow/io/checkpoint.hpp"
#include "kinflow/io/deck.hpp"
#include "kinflow/io/run_options.hpp"
#include "kinflow/io/snapshot_writer.hpp"

namespace kinflow::drivers {

/// The command line that started the run, for the "continue with" line (set by kinflow-simulate).
inline std::string g_command_line = "kinflow-simulate DECK";

namespace signals {
inline volatile std::sig_atomic_t g_stop = 0; ///< the first SIGTERM / SIGUSR1 received (0: none)
inline char g_tmp[4096] = {};                ///< rank 0: the partial output to rename on an immediate exit
inline char g_incomplete[4096] = {};

inline void handle(int sig) {
    if (sig == SIGINT || g_stop != 0) {
        if (g_tmp[0] != '\0') ::rename(g_tmp, g_incomplete);
        ::_exit(128 + sig);
    }
    g_stop = sig;
}

inline void install() {
    struct sigaction sa {};
    sa.sa_handler = handle;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGUSR1, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
}

/// Name the partial output for an immediate exit (empty strings: nothing to rename).
inline void set_partial(const std::string& tmp, const std::string& incomplete) {
    g_tmp[0] = '\0';
    if (tmp.size() >= sizeof g_tmp || incomplete.size() >= sizeof g_incomplete) return;
    std::memcpy(g_incomplete, incomplete.c_str(), incomplete.size() + 1);
    std::memcpy(g_tmp, tmp.c_str(), tmp.size() + 1);
}

inline const char* name(int sig) {
    switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGINT: return "SIGINT";
    default: return "a signal";
    }
}
} // namespace signals

class RunControl {
  public:
    /// `engine` names the deck section; `fixed_layout`: the engine's particle layout depends on
    /// the rank count (DSMC sub-ensembles), so a resume needs the checkpoint's rank count.
    /// `any_layout`: the engine's resume() moves rows to their ranks itself (spatial DSMC), so
    /// any rank count may continue.
    RunControl(const comm::Communicator& comm, const io::Deck& deck, const io::RunOptions& run,
               const io::OutputOptions& out, std::string engine, bool fixed_layout, bool any_layout = false)
        : _comm(comm), _deck(deck), _run(run), _out(out), _engine(std::move(engine)), _path(out.file + ".ckpt"),
          _any_layout(any_layout) {
        signals::install();
        if (!deck.resume()) {
            if (_comm.is_root() && std::filesystem::exists(_path))
                std::cerr << "kinflow: note: " << _path
                          << " is the checkpoint of an interrupted run; this run starts afresh and replaces it "
                             "(--resume continues it)"
                          << std::endl;
            return;
        }
        try {
            _ckpt.emplace(comm, _path);
        } catch (const Error& e) {
            throw SetupError("--resume: " + std::string(e.what()) +
                             (std::filesystem::exists(_path) ? ""
                                                             : " (none is written unless output.checkpoint_every > 0 "
                                                               "or SIGTERM/SIGUSR1 stopped the run; a completed run "
                                                               "removes it)"));
        }
        const auto& h = _ckpt->header();
        if (h.producer != _engine)
            throw SetupError("--resume: " + _path + " is a checkpoint of run.engine = " + h.producer + ", the deck asks for " + _engine);
        const auto diff = io::deck_differences(h.physics, physics());
        if (!diff.empty()) {
            std::string list;
            for (const auto& d : diff) list += (list.empty() ? "" : "; ") + d;
            throw SetupError("--resume: the deck differs from " + _path + " in keys that change the physics: " + list +
                             " (only run.steps and [output] may change)");
        }
        if (h.step > run.steps)
            throw SetupError(deck.source("run.steps") + ": run.steps = " + std::to_string(run.steps) + " but " + _path +
                             " is at step " + std::to_string(h.step));
        if (fixed_layout && h.ranks != comm.size())
            throw SetupError("--resume: " + _path + " was written by " + std::to_string(h.ranks) + " ranks and run.engine = " +
                             _engine + " depends on the rank count: continue with " + std::to_string(h.ranks) + " ranks");
    }
    ~RunControl() { signals::set_partial("", ""); }
    RunControl(const RunControl&) = delete;
    RunControl& operator=(const RunControl&) = delete;

    bool resuming() const { return _ckpt.has_value(); }
    const io::CheckpointReader& checkpoint() const { return *_ckpt; }
    std::int64_t start_step() const { return _ckpt ? _ckpt->header().step : 0; }
    double start_time() const { return _ckpt ? _ckpt->header().time : 0.0; }

    /// Set up the engine's state: from the checkpoint on --resume, else engine.init(particles).
    template <class Engine>
    void start(Engine& engine, ParticleSet& particles) const {
        if (_ckpt) {
            particles = _ckpt->particles(_any_layout);
            engine.resume(particles, _ckpt->engine_state());
        } else {
            engine.init(particles);
        }
    }

    /// The run's snapshot writer: a fresh file, or on --resume the interrupted run's output with
    /// the snapshots after the checkpoint removed. The file records the resolved [run], [output]
    /// and engine sections.
    std::unique_ptr<io::SnapshotWriter> open_writer(int dim) {
        io::FileInfo info{_engine, _deck.resolved({"run", "output", _engine}), _run.seed, dim};
        std::unique_ptr<io::SnapshotWriter> w;
        try {
            w = _ckpt ? std::make_unique<io::SnapshotWriter>(_comm, _out.file, info, _ckpt->header().output)
                      : std::make_unique<io::SnapshotWriter>(_comm, _out.file, info);
        } catch (const Error& e) {
            throw SetupError((_ckpt ? std::string("--resume: ") : _deck.source("output.file") + ": ") + e.what());
        }
        if (_comm.is_root()) signals::set_partial(w->temp_path(), _out.file + ".incomplete");
        return w;
    }

    /// After step n (time t) and its snapshot: the test hook run.kill_at_step, then a checkpoint
    /// when output.checkpoint_every is due or a signal asked for one (collective). Returns true
    /// when the run must stop: the checkpoint is written and the output suspended.
    template <class Engine>
    bool after_step(std::int64_t n, double t, const ParticleSet& p, io::SnapshotWriter& writer, const Engine& engine) {
        if (n == _run.kill_at_step) std::raise(signal_number(_run.kill_signal));
        const bool stop = _comm.any(signals::g_stop != 0);
        const bool due = _out.checkpoint_every > 0 && n % _out.checkpoint_every == 0 && n < _run.steps;
        if (!stop && !due) return false;
        io::CheckpointHeader h;
        h.producer = _engine;
        h.deck = _deck.resolved({"run", "output", _engine});
        h.physics = physics();
        h.step = n;
        h.time = t;
        h.output = writer.continuation();
        io::write_checkpoint(_comm, _path, h, p, engine.state());
        if (!stop) return false;
        writer.suspend();
        signals::set_partial("", "");
        _stopped_by = signals::g_stop;
        _stop_step = n;
        _stop_time = t;
        return true;
    }

    /// The run completed: its checkpoint is no longer needed.
    void completed() {
        signals::set_partial("", "");
        _comm.barrier();
        if (_comm.is_root()) {
            std::error_code ec;
            std::filesystem::remove(_path, ec);
        }
    }

    /// After after_step() returned true: the one line saying how to continue (rank 0).
    void report_stop() const {
        if (!_comm.is_root()) return;
        std::cout << "kinflow: " << signals::name(_stopped_by) << ": stopped after step " << _stop_step << " (t = "
                  << format_number(_stop_time) << "); checkpoint " << _path << ", snapshots so far in " << _out.file
                  << ".tmp; continue with: " << g_command_line << " --resume" << std::endl;
    }

  private:
    static int signal_number(const std::string& name) {
        if (name == "TERM") return SIGTERM;
        if (name == "USR1") return SIGUSR1;
        if (name == "INT") return SIGINT;
        return SIGKILL;
    }
    /// The resolved keys that change the physics: the engine section and run.engine/seed/dt.
    std::string physics() const {
        std::string run = "[run]\n";
        const std::string all = _deck.resolved({"run"});
        for (const char* key : {"engine = ", "seed = ", "dt = "}) {
            const auto at = all.find("\n" + std::string(key));
            if (at != std::string::npos) run += all.substr(at + 1, all.find('\n', at + 1) - at);
        }
        return run + "\n" + _deck.resolved({_engine});
    }

    comm::Communicator _comm;
    const io::Deck& _deck;
    const io::RunOptions& _run;
    const io::OutputOptions& _out;
    std::string _engine, _path;
    bool _any_layout = false;
    std::optional<io::CheckpointReader> _ckpt;
    int _stopped_by = 0;
    std::int64_t _stop_step = 0;
    double _stop_time = 0.0;
};

} // namespace kinflow::drivers
