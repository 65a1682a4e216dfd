# An offline dependency bundle (launch/bundle-deps.sh) unpacked into DISTILL_DEPS_PREFIX: Debian's
# packages under <prefix>/usr, found before the system's.
set(DISTILL_DEPS_PREFIX "" CACHE PATH "prefix an offline dependency bundle was unpacked into")
if(DISTILL_DEPS_PREFIX)
  set(_deps_usr ${DISTILL_DEPS_PREFIX}/usr)
  # Debian's multiarch folder of the target (x86_64-linux-gnu, aarch64-linux-gnu, ...).
  if(CMAKE_LIBRARY_ARCHITECTURE)
    set(_deps_arch ${CMAKE_LIBRARY_ARCHITECTURE})
  else()
    set(_deps_arch ${CMAKE_SYSTEM_PROCESSOR}-linux-gnu)
  endif()
  set(_deps_lib ${_deps_usr}/lib/${_deps_arch})
  if(NOT EXISTS ${_deps_lib}/openmpi/include/mpi.h)
    message(FATAL_ERROR "DISTILL_DEPS_PREFIX=${DISTILL_DEPS_PREFIX} holds no unpacked bundle "
                        "(no ${_deps_lib}/openmpi/include/mpi.h); run launch/bundle-deps.sh unpack")
  endif()
  list(PREPEND CMAKE_PREFIX_PATH ${_deps_usr} ${_deps_lib}/cmake)
  # Open MPI and HDF5 without their compiler wrappers, whose paths point at /usr.
  set(MPI_SKIP_COMPILER_WRAPPER ON)
  set(MPI_C_HEADER_DIR ${_deps_lib}/openmpi/include CACHE PATH "")
  set(MPI_C_LIB_NAMES mpi CACHE STRING "")
  set(MPI_mpi_LIBRARY ${_deps_lib}/openmpi/lib/libmpi.so CACHE FILEPATH "")
  set(MPIEXEC_EXECUTABLE ${_deps_usr}/bin/mpirun.openmpi CACHE FILEPATH "")
  set(HDF5_FOUND TRUE)
  set(HDF5_INCLUDE_DIRS ${_deps_usr}/include/hdf5/serial)
  set(HDF5_C_LIBRARIES ${_deps_lib}/hdf5/serial/libhdf5.so)
  set(HDF5_DEFINITIONS "")
  set(GTEST_ROOT ${_deps_usr})
endif()

