"""Runtime set-up: the device, the precision and every global torch flag a run depends on, set in one place.

`set_up_runtime` is the only function that changes torch's global state: flush-denormal on the CPU,
deterministic algorithms (always on the CPU, with `training.deterministic` on CUDA), TF32 where bf16 autocast
runs. It returns the `Runtime`: what the run actually uses, whose `record()` goes on the run's record
(status.json, eval.json, MLflow tags), so a reader knows the device, precision and threads behind a number.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import torch

from iris.config import TrainingConfig
from iris.errors import ConfigError


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    bf16: bool  # autocast in bfloat16 (master weights stay fp32)
    compile: bool  # torch.compile the convolutional nets (iris.trainer.compile_nets)
    deterministic: bool

    def record(self) -> dict:
        """What a run's numbers depend on beyond its config and seed."""
        return {"device": self.device.type, "device_name": device_name(self.device),
                "precision": "bf16" if self.bf16 else "fp32", "torch_threads": torch.get_num_threads(),
                "deterministic": self.deterministic, "torch": torch.__version__}


def set_up_runtime(training: TrainingConfig) -> Runtime:
    """The device, precision and compile setting the config asks for on this machine, with torch's global flags set
    for them (see the module docstring)."""
    device = pick_device(training.device)
    bf16 = training.precision == "bf16" or (training.precision == "auto" and device.type == "cuda")
    compiled = training.compile == "on" or (training.compile == "auto" and device.type == "cuda")
    torch.set_flush_denormal(True)  # tiny activations from small initial weights made CPU convolutions ~7x slower
    if device.type == "cuda" and bf16:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # what autocast leaves in fp32
    # The CPU: with 2 threads the codebook's gradient (an indexed sum, index_put_ with accumulate) added its rows in
    # an order that changed between processes, so two fresh runs of one seed differed in every weight; torch's
    # deterministic kernels fix the order. CUDA: off by default (atomics in many backward kernels; slower).
    deterministic = device.type == "cpu" or training.deterministic
    if deterministic and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts: before any CUDA work
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(deterministic)
    return Runtime(device, bf16, compiled, deterministic)


def pick_device(name: str) -> torch.device:
    """auto (CUDA where there is a GPU, else the CPU), cpu, cuda or cuda:N."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind, _, number = name.partition(":")
    if kind not in ("cpu", "cuda") or (number and (kind == "cpu" or not number.isdigit())):
        raise ConfigError(f"unknown device {name!r}; valid: auto, cpu, cuda, cuda:N")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}, but torch finds no CUDA device here; valid here: auto, cpu")
    if number and int(number) >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r}, but there are {torch.cuda.device_count()} CUDA devices here; valid: "
                          f"auto, cpu, cuda, cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
