// Precompiled header for the torch-using targets: the heavy LibTorch headers only.
// Sources still include what they use; this only makes rebuilds fast.
#pragma once
#include <ATen/ATen.h>
#include <torch/types.h>
#include <torch/nn/functional.h>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include <map>
