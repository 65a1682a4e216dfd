// The student side of `train` and `run`, built from the run config: the data set, the student's
// architecture and first weights (student.init, student.init_layers), the online teacher or the
// soft-target store, and the TrainJob over them, each checked against the others.
#pragma once
#include <memory>

#include "distill/app/config.h"
#include "distill/comm/communicator.h"
#include "distill/data/dataset.h"
#include "distill/store/reader.h"
#include "distill/teacher/precompute.h"
#include "distill/train/trainer.h"

namespace distill {

// A TrainJob and what it points to, kept alive together; not copyable or movable.
struct StudentRun {
  explicit StudentRun(const std::string& data_path) : data(read_dataset(data_path)) {}
  StudentRun(const StudentRun&) = delete;
  StudentRun& operator=(const StudentRun&) = delete;

  Dataset data;
  std::unique_ptr<LoadedTeacher> online;  // teacher.online
  std::unique_ptr<LoadedTeacher> judge;   // the teacher for train.select: dev_agreement (no online teacher)
  std::unique_ptr<StoreReader> store;     // store.path
  // Further teachers (teacher.extra_paths): online, or loaded to judge dev agreement; their stores.
  std::vector<std::unique_ptr<LoadedTeacher>> more_teachers;
  std::vector<std::unique_ptr<StoreReader>> more_stores;
  std::unique_ptr<TeacherModel> ensemble;  // of all teachers, for dev agreement when there are several
  TrainJob job;
};

// Reads the data set and opens what the student learns from. With `teachers` > 0 the store is
// being written by that many teacher ranks (streaming): shards are loaded as they are committed.
// Checks that every rank has the same data set, teacher and store, and that data set, student,
// teacher and store fit each other (ConfigError, DataError or StoreError naming the key or file).
// Real runs only: the job ends rank 0 after a checkpoint when the fault hook asks (app/faults.h).
// Collective over `comm`.
std::unique_ptr<StudentRun> open_student_run(Communicator& comm, const RunConfig& c, bool resume, int teachers);

}  // namespace distill
