// MPI backend for CPU buffers, and the process-wide MPI lifetime.
#pragma once
#include <memory>

#include "distill/comm/communicator.h"

namespace distill {

// Initialises MPI once per process (thread level FUNNELED); finalises at exit. Safe to call twice.
void mpi_init(int* argc, char*** argv);
void mpi_finalize();
bool mpi_initialized();
// From now on a blocking collective of the MPI backend that has not completed after `seconds` ends
// the whole job with MPI_Abort, naming the call, rank and host (Note [MPI watchdog] in mpi.cpp).
// Call again to change the timeout. Without MPI it does nothing.
void mpi_set_timeout(double seconds);
// Ends every process of the job with `code`. Never returns.
[[noreturn]] void mpi_abort(int code);

// A communicator over MPI_COMM_WORLD.
std::unique_ptr<Communicator> make_world_communicator();

}  // namespace distill
