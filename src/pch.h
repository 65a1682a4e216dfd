// Precompiled header: the heavy third-party headers, compiled once per target.
#pragma once
#include <torch/torch.h>
#include <hdf5.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>
