#!/usr/bin/env bash
# Cluster launch of distill under Open MPI: ranks per node, one block of cores per rank (bound),
# thread counts that match the block, and the environment distill needs on shared file systems.
#
#   launch/mpirun.sh -np 16 --ppn 8 [--hostfile hosts] [--gpus] -- distill run -c run.yaml --teacher-ranks 4
#
#   --ppn N       ranks per node (default: all ranks on one node)
#   --hostfile F  Open MPI hostfile (see launch/hostfile.example); Slurm: launch/slurm.sbatch makes one
#   --gpus        bind local rank i to GPU i mod (GPUs on the node) via CUDA_VISIBLE_DEVICES
#   --dry-run     print the mpirun command instead of running it
# Ranks 0..N-1 of `distill run --teacher-ranks N` are the teachers: with --map-by ppr they fill the
# first node(s), so teacher and student groups can be placed by choosing N as a multiple of --ppn.
set -euo pipefail
NP="" PPN="" HOSTFILE="" GPUS=0 DRY=0
while [ $# -gt 0 ]; do
  case "$1" in
    -np|--np) NP=$2; shift 2 ;;
    --ppn) PPN=$2; shift 2 ;;
    --hostfile) HOSTFILE=$2; shift 2 ;;
    --gpus) GPUS=1; shift ;;
    --dry-run) DRY=1; shift ;;
    --) shift; break ;;
    *) echo "mpirun.sh: unknown option $1 (put the distill command after --)" >&2; exit 2 ;;
  esac
done
[ -n "$NP" ] && [ $# -gt 0 ] || { echo "usage: launch/mpirun.sh -np N [--ppn P] [--hostfile F] [--gpus] -- distill ..." >&2; exit 2; }
PPN=${PPN:-$NP}
CORES=$(nproc)
THREADS=$(( CORES / PPN )); [ "$THREADS" -ge 1 ] || THREADS=1
# HDF5 file locking fails or serialises on NFS/Lustre/GPFS; distill's commit protocol (write a
# temporary name, fsync, rename) does not need it. Passive OpenMP waiting leaves cores to BLAS.
export HDF5_USE_FILE_LOCKING=FALSE OMP_NUM_THREADS=$THREADS OMP_WAIT_POLICY=PASSIVE
ARGS=(-np "$NP" --map-by "ppr:$PPN:node:PE=$THREADS" --bind-to core
  -x HDF5_USE_FILE_LOCKING -x OMP_NUM_THREADS -x OMP_WAIT_POLICY -x PATH -x LD_LIBRARY_PATH)
[ -n "$HOSTFILE" ] && ARGS+=(--hostfile "$HOSTFILE")
[ "$(id -u)" = 0 ] && { export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; ARGS+=(--allow-run-as-root); }
[ "$PPN" -gt "$CORES" ] && ARGS=(-np "$NP" --oversubscribe -x HDF5_USE_FILE_LOCKING -x OMP_NUM_THREADS -x OMP_WAIT_POLICY -x PATH -x LD_LIBRARY_PATH ${HOSTFILE:+--hostfile "$HOSTFILE"})
CMD=("$@")
if [ "$GPUS" = 1 ]; then
  # Each rank sees one GPU: local rank modulo the GPUs on its node.
  CMD=(bash -c 'n=$(nvidia-smi -L 2>/dev/null | wc -l); [ "$n" -gt 0 ] || n=1
    export CUDA_VISIBLE_DEVICES=$(( ${OMPI_COMM_WORLD_LOCAL_RANK:-0} % n )); exec "$@"' distill-rank "$@")
fi
if [ "$DRY" = 1 ]; then
  printf '%q ' mpirun "${ARGS[@]}" "${CMD[@]}"; echo
  exit 0
fi
exec mpirun "${ARGS[@]}" "${CMD[@]}"
