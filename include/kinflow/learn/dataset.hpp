#pragma once
// Training data: the target set X_T (a snapshot's `position`), an optional paired source set X_0
// (another snapshot of the same run, matched by particle id) and optional conditioning values,
// from kinflow HDF5 files or a builtin 2D data set. Each rank holds only its shard (a block of
// every snapshot, read with parallel HDF5 hyperslabs); normalisation statistics are global and
// bit-identical for any rank count (fixed chunks summed in global-row order). No LibTorch here.
#include <cstdint>
#include <string>
#include <vector>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/core/error.hpp"
#include "kinflow/learn/options.hpp"

namespace kinflow::learn {

/// Affine normalisation x_hat = (x - mean) / std per component; conditions likewise.
struct Normalization {
    std::vector<double> mean, std;               ///< target
    std::vector<double> source_mean, source_std; ///< paired source snapshot (empty otherwise)
    std::vector<double> cond_mean, cond_std;     ///< conditions (std 1 where all values agree)
};

/// One (file, target snapshot) pair, or the builtin set; its rows are a contiguous range
/// [offset, offset + n_global) of the global row index.
struct Part {
    std::string file; ///< empty for builtin data
    int snapshot = 0; ///< resolved target snapshot index
    double time = 0.0;
    double source_time = 0.0; ///< time of the paired source snapshot (snapshot sources)
    std::int64_t n_global = 0, offset = 0;
    std::int64_t begin = 0, end = 0;  ///< this rank's rows of the part (block decomposition)
    std::int64_t local_offset = 0;    ///< first local row of the part in the rank's arrays
    std::vector<double> cond;         ///< raw condition values
};

/// The rows of a minibatch that this rank evaluates (rows of the global batch it holds), in slot order.
struct Batch {
    std::int64_t rows = 0;
    std::vector<float> x1;   ///< normalised target rows [rows, dim]
    std::vector<float> x0;   ///< source: paired snapshot rows or fresh noise [rows, dim]
    std::vector<float> u;    ///< uniform in (0, 1) per row (the path time before scaling)
    std::vector<float> cond; ///< normalised conditions [rows, cond_dim]
    std::vector<int> part;   ///< part of each row
    std::vector<std::int64_t> slot; ///< slot in the global batch
};

/// A Haar-random orthogonal dim x dim matrix q (row-major), keyed by (step, slot) of `rng`: the
/// Q factor of a standard Gaussian matrix with the signs of R's diagonal made positive (Haar on
/// O(dim), Mezzadri 2007); `proper`: its first column negated when det = -1 (Haar on SO(dim)).
void random_orthogonal(std::uint64_t seed, std::uint64_t step, std::uint64_t slot, int dim, bool proper, double* q);
/// Determinant of a dim x dim row-major matrix (partial pivoting).
double determinant(const double* a, int dim);

/// Builtin 2D data sets (gaussian, eight_gaussians, checkerboard, ring_ellipse): rows [begin, end) of the
/// sequence keyed by `seed`, row-major [end - begin, 2]. Row g does not depend on begin/end.
void generate_builtin(const std::string& name, std::uint64_t seed, std::int64_t begin, std::int64_t end,
                      std::vector<double>& out);
/// Mean and covariance (row-major 2x2) of builtin:gaussian.
std::vector<double> builtin_gaussian_mean();
std::vector<double> builtin_gaussian_cov();

class Dataset {
  public:
    /// Load (collective). Throws Error naming the file for a missing file or snapshot, a dimension
    /// mismatch, ids that do not pair, a missing condition key or non-finite values.
    Dataset(const comm::Communicator& comm, const DataSpec& spec);

    int dim() const { return _dim; }
    int cond_dim() const { return static_cast<int>(_spec.conditions.size()); }
    const DataSpec& spec() const { return _spec; }
    const std::vector<Part>& parts() const { return _parts; }
    const Normalization& normalization() const { return _norm; }
    std::int64_t n_global() const { return _n_global; }
    std::int64_t n_local() const { return static_cast<std::int64_t>(_target.size()) / _dim; }
    /// Normalised local rows, [n_local, dim] row-major, parts one after another.
    const std::vector<float>& target() const { return _target; }
    const std::vector<float>& source() const { return _source; }
    /// Normalised condition values of each part, [parts, cond_dim].
    const std::vector<float>& part_conditions() const { return _part_cond; }

    /// The rows of global minibatch `step` (global_batch slots drawn with replacement over all
    /// rows by a counter-based generator keyed by seed, step and slot) that this rank holds,
    /// with their source rows (paired) or noise, and uniform times. The union over ranks is the
    /// same global batch for any rank count.
    void draw(std::uint64_t seed, std::int64_t step, std::int64_t global_batch, Batch& out) const;

    /// reflow: replace the rows by `n_global` generated pairs, this rank's block [begin, end) of
    /// normalised source rows x0 and target rows x1 ([end - begin, dim] each), drawn paired (as a
    /// snapshot source). The normalisation stays the data's. Unconditional data only.
    void set_pairs(std::int64_t n_global, std::int64_t begin, std::int64_t end, std::vector<float> x0,
                   std::vector<float> x1);

  private:
    /// train.augment: the target row x1 (and the paired source row x0, when not null) of global
    /// slot `slot` of minibatch `step`, normalised, mapped by one random rotation about the
    /// targets' mean.
    void rotate_row(std::uint64_t seed, std::int64_t step, std::int64_t slot, float* x1, float* x0) const;
    void load_files(const comm::Communicator& comm);
    void load_builtin(const comm::Communicator& comm);
    void compute_normalization(const comm::Communicator& comm, const std::vector<double>& target,
                               const std::vector<double>& source);
    /// out = (rows - mean) / std per component, as float32.
    void normalise(const std::vector<double>& rows, const std::vector<double>& mean, const std::vector<double>& std,
                   std::vector<float>& out) const;

    DataSpec _spec;
    int _dim = 0;
    std::int64_t _n_global = 0;
    std::vector<Part> _parts;
    Normalization _norm;
    std::vector<float> _target, _source, _part_cond;
};

/// Value of `key` (`section.name`) in an INI text such as a file's recorded deck; throws Error
/// when missing or not a number.
double deck_value(const std::string& ini, const std::string& key);

} // namespace kinflow::learn
