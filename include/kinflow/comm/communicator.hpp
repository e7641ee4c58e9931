#pragma once
// The MPI communicator engines receive (they never touch MPI_COMM_WORLD), with the collective
// operations kinflow needs. All MPI calls in kinflow live in comm/.
#include <cstdint>
#include <string>
#include <vector>

#include <mpi.h>

namespace kinflow::comm {

/// RAII MPI initialisation (MPI_THREAD_FUNNELED); finalises on destruction. With `initialise`
/// false it does nothing: the process runs alone, without MPI (Communicator::local()).
class Environment {
  public:
    Environment(int& argc, char**& argv, bool initialise = true);
    ~Environment();
    Environment(const Environment&) = delete;
    Environment& operator=(const Environment&) = delete;
    bool initialised() const { return _initialised; }

  private:
    bool _initialised = false;
};

/// The rank count a launcher announced to this process in its environment (Open MPI's mpiexec:
/// OMPI_COMM_WORLD_SIZE; MPICH's Hydra and Slurm: PMI_SIZE); 1 when started without one.
int launched_ranks();

/// A non-owning view of an MPI communicator.
class Communicator {
  public:
    explicit Communicator(MPI_Comm comm);
    static Communicator world();
    static Communicator self();
    /// This process alone without MPI (MPI need not be initialised): rank 0 of 1, every
    /// collective a local operation, raw() MPI_COMM_NULL (io opens its files with HDF5's serial
    /// driver then: io::mpio_fapl).
    static Communicator local();
    bool is_local() const { return _comm == MPI_COMM_NULL; }

    int rank() const { return _rank; }
    int size() const { return _size; }
    bool is_root() const { return _rank == 0; }
    MPI_Comm raw() const { return _comm; }

    void barrier() const;
    double sum(double v) const;
    std::int64_t sum(std::int64_t v) const;
    double max(double v) const;
    double min(double v) const;
    std::int64_t max(std::int64_t v) const;
    /// Elementwise sum over ranks (in place).
    void sum(std::vector<double>& v) const;
    /// Logical or over ranks.
    bool any(bool v) const;
    /// Sum of `v` over lower ranks (0 on rank 0).
    std::int64_t exscan(std::int64_t v) const;
    /// Concatenation of every rank's vector, in rank order, on every rank.
    std::vector<double> allgatherv(const std::vector<double>& local) const;
    std::vector<std::int64_t> allgatherv(const std::vector<std::int64_t>& local) const;
    /// Concatenation in rank order on `root` only (empty elsewhere).
    std::vector<double> gatherv(const std::vector<double>& local, int root = 0) const;
    std::vector<std::int64_t> gatherv(const std::vector<std::int64_t>& local, int root = 0) const;
    /// Elementwise sum over ranks of `in` (sum of counts elements), rank r receiving block r
    /// (counts[r] elements, blocks consecutive in rank order) in `out`.
    void reduce_scatter_sum(const double* in, double* out, const std::vector<int>& counts) const;
    /// In place: block r of `buf` (counts[r] elements at displs[r]) comes from rank r, on every rank.
    void allgatherv_in_place(double* buf, const std::vector<int>& counts, const std::vector<int>& displs) const;
    void broadcast(std::string& s, int root = 0) const;
    void broadcast(std::vector<double>& v, int root = 0) const;
    /// Abort every rank (for errors that may differ between ranks).
    [[noreturn]] void abort(int code) const;

  private:
    MPI_Comm _comm;
    int _rank = 0, _size = 1;
};

/// The first line of MPI_Get_library_version (the MPI implementation and its version); callable
/// before MPI is initialised.
std::string mpi_library_version();

} // namespace kinflow::comm
