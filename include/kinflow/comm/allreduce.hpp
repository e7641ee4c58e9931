#pragma once
// Collectives on flat numeric buffers for the data-parallel trainer: one in-place sum per step
// over the whole gradient (plus the loss), and broadcasts of parameter buffers from rank 0.
#include <cstddef>
#include <cstdint>

#include "kinflow/comm/communicator.hpp"

namespace kinflow::comm {

/// Elementwise sum over ranks, in place (one MPI_Allreduce).
void allreduce_sum(const Communicator& comm, float* data, std::size_t n);
void allreduce_sum(const Communicator& comm, double* data, std::size_t n);

/// Copy `root`'s buffer to every rank (the sizes must agree).
void broadcast(const Communicator& comm, float* data, std::size_t n, int root = 0);
void broadcast(const Communicator& comm, double* data, std::size_t n, int root = 0);
void broadcast(const Communicator& comm, std::int64_t* data, std::size_t n, int root = 0);

} // namespace kinflow::comm
