"""The numeric bad-input cases of test_bad_input.py again with `--device cuda` (gpu label: fails without a
CUDA device). On CUDA the load-time finite check runs on the device the weights are copied to, and the
non-finite checks of eval, generate and training look at CUDA tensors; the messages, the exit status and
"nothing written" must be the same as on the CPU."""
import pytest

from lota_testlib import require_cuda
from test_bad_input import (m, test_dtype_of_a_dense_tensor_is_checked,  # noqa: F401 (collected by pytest)
                            test_non_finite_adapter_tensor_is_refused, test_non_finite_gptq_scale_is_refused,
                            test_non_finite_loss_names_the_tensor, test_non_finite_weight_is_refused_at_load,
                            test_rms_norm_eps_must_be_positive)


@pytest.fixture
def device():
    require_cuda()
    return "cuda"
