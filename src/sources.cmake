# The sources of libdistill, one list per layer (the layer table is in README.md). main.cpp is the
# distill executable; comm/nccl.cpp is built by src/cmake/DistillNccl.cmake when NCCL is found.
set(DISTILL_UTIL_SOURCES
  src/util/cpu_isa.cpp src/util/fs.cpp src/util/hash.cpp src/util/lock.cpp src/util/log.cpp src/util/options.cpp
  src/util/progress.cpp src/util/text.cpp)
set(DISTILL_COMM_SOURCES
  src/comm/communicator.cpp src/comm/device.cpp src/comm/mpi.cpp src/comm/thread.cpp
  src/comm/thread_calls.cpp
  src/comm/watchdog.cpp)
set(DISTILL_IO_SOURCES
  src/io/h5.cpp src/io/safetensors.cpp src/io/tensorboard.cpp)
set(DISTILL_STORE_SOURCES
  src/store/encode.cpp src/store/manifest.cpp src/store/reader.cpp src/store/schema.cpp
  src/store/shard.cpp src/store/sizing.cpp src/store/verify.cpp src/store/writer.cpp)
set(DISTILL_MODEL_SOURCES
  src/model/bert.cpp src/model/config.cpp src/model/device.cpp src/model/hf.cpp src/model/init.cpp
  src/model/load.cpp src/model/network.cpp src/model/precision.cpp src/model/teacher_model.cpp
  src/model/vector.cpp
  src/model/weights.cpp)
set(DISTILL_DATA_SOURCES
  src/data/augment.cpp src/data/batch.cpp src/data/dataset.cpp src/data/dataset_writer.cpp src/data/split_file.cpp src/data/loader.cpp src/data/mix.cpp src/data/prefetch.cpp src/data/prepare.cpp src/data/prepare_runs.cpp
  src/data/prepare_features.cpp src/data/sampler.cpp src/data/split_rows.cpp src/data/streaming.cpp src/data/synthetic.cpp src/data/table.cpp
  src/data/tokenizer.cpp)
set(DISTILL_KD_SOURCES
  src/kd/intermediate.cpp src/kd/layer_map.cpp src/kd/loss.cpp src/kd/objective.cpp)
set(DISTILL_TRAIN_SOURCES
  src/train/checkpoint.cpp src/train/checkpointer.cpp src/train/eval.cpp src/train/metrics.cpp src/train/metrics_log.cpp src/train/nonfinite.cpp
  src/train/optim.cpp src/train/options.cpp src/train/reducer.cpp src/train/step_log.cpp
  src/train/student.cpp src/train/trainer.cpp)
set(DISTILL_TEACHER_SOURCES
  src/teacher/load.cpp src/teacher/options.cpp src/teacher/precompute.cpp)
set(DISTILL_APP_SOURCES
  src/app/augment.cpp src/app/bench.cpp src/app/bench_topk.cpp src/app/commands.cpp src/app/config.cpp src/app/curve.cpp
  src/app/curve_fit.cpp src/app/eval_command.cpp src/app/faults.cpp src/app/line_chart.cpp src/app/report.cpp
  src/app/report_read.cpp src/app/inspect.cpp src/app/prepare_command.cpp src/app/student_run.cpp src/app/train_commands.cpp)

set(DISTILL_SOURCES)
foreach(_layer UTIL COMM IO STORE MODEL DATA KD TRAIN TEACHER APP)
  list(TRANSFORM DISTILL_${_layer}_SOURCES PREPEND ${CMAKE_SOURCE_DIR}/)
  list(APPEND DISTILL_SOURCES ${DISTILL_${_layer}_SOURCES})
endforeach()

# Sources that include no LibTorch header skip the precompiled header: loading it costs more than
# compiling any of them (about 15 s per file on 2 cores, against 1 to 3 s without it).
set(DISTILL_TORCH_FREE_SOURCES
  ${DISTILL_UTIL_SOURCES} ${DISTILL_IO_SOURCES} ${DISTILL_STORE_SOURCES}
  src/comm/communicator.cpp src/comm/mpi.cpp src/comm/thread.cpp src/comm/thread_calls.cpp
  src/comm/watchdog.cpp
  src/data/augment.cpp src/data/dataset.cpp src/data/dataset_writer.cpp src/data/mix.cpp src/data/split_file.cpp src/data/prepare.cpp src/data/prepare_runs.cpp src/data/prepare_features.cpp src/data/sampler.cpp
  src/data/split_rows.cpp src/data/streaming.cpp
  src/data/synthetic.cpp src/data/table.cpp src/data/tokenizer.cpp
  src/app/curve_fit.cpp src/app/line_chart.cpp src/app/report.cpp
  src/app/report_read.cpp src/kd/layer_map.cpp src/model/config.cpp src/train/checkpoint.cpp src/train/metrics.cpp src/train/metrics_log.cpp
  src/train/nonfinite.cpp)
list(TRANSFORM DISTILL_TORCH_FREE_SOURCES PREPEND ${CMAKE_SOURCE_DIR}/ REGEX "^src/")
set_source_files_properties(${DISTILL_TORCH_FREE_SOURCES} PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
