"""Which EC2 instance types run the demo: one rule for the stack config and the policy pack.

Standard library only, pure (it ships inside the engine with the other shared rules).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# What a host needs to run Sirius from prebuilt images: amd64 (the AMI and the images), 2 vCPU
# (sirius-ui has `cpus: "2"`: its container is not created on fewer) and 4 GiB (the memory
# reservations add up to about 2.7 GB). One rule for the stack config and the policy pack.
MIN_MEMORY_MIB = 4096
MIN_VCPUS = 2
INSTANCE_TYPE_FORM = "an amd64 EC2 instance type with at least 2 vCPU and 4 GiB, e.g. t3.medium"
_INSTANCE_TYPE = re.compile(r"([a-z]+)(\d+)([a-z-]*)\.([a-z0-9]+)")


@dataclass(frozen=True)
class InstanceSpec:
    vcpus: int
    memory_mib: int
    amd64: bool


def _sizes(family: str, amd64: bool, sizes: dict[str, tuple[int, int]]) -> dict[str, InstanceSpec]:
    return {f"{family}.{size}": InstanceSpec(vcpus, mib, amd64) for size, (vcpus, mib) in sizes.items()}


_T = {"nano": (2, 512), "micro": (2, 1024), "small": (2, 2048), "medium": (2, 4096), "large": (2, 8192),
      "xlarge": (4, 16384), "2xlarge": (8, 32768)}
_T2 = {**_T, "nano": (1, 512), "micro": (1, 1024), "small": (1, 2048)}
_M = {"large": (2, 8192), "xlarge": (4, 16384), "2xlarge": (8, 32768)}
_C = {"large": (2, 4096), "xlarge": (4, 8192), "2xlarge": (8, 16384)}
_ARM = {"medium": (1, 4096), "large": (2, 8192), "xlarge": (4, 16384)}
# The types people reach for (AWS's published figures); anything else is judged by AWS's own
# data when the program can ask (the preflight is on), else by its name only.
KNOWN_INSTANCE_TYPES: dict[str, InstanceSpec] = {
    **_sizes("t2", True, _T2), **_sizes("t3", True, _T), **_sizes("t3a", True, _T),
    **_sizes("m5", True, _M), **_sizes("m6i", True, _M), **_sizes("m7i", True, _M), **_sizes("m6a", True, _M),
    **_sizes("c5", True, _C), **_sizes("c6i", True, _C), **_sizes("c7i", True, _C),
    **_sizes("t4g", False, _T), **_sizes("m6g", False, _ARM), **_sizes("m7g", False, _ARM),
    **_sizes("c6g", False, {"medium": (1, 2048), "large": (2, 4096)}), **_sizes("a1", False, {"large": (2, 4096)}),
}


def instance_type_problem(name: object, spec: InstanceSpec | None = None) -> str | None:
    """What keeps `name` from running the demo, or None. `spec` is AWS's data for it, when
    known; otherwise the table above, otherwise the name alone (Graviton families carry a g)."""
    if not isinstance(name, str) or not _INSTANCE_TYPE.fullmatch(name):
        shown = repr(name if not isinstance(name, str) or len(name) <= 60 else name[:57] + "...")
        return f"{shown} is not an EC2 instance type; expected family.size, e.g. t3.medium"
    spec = spec or KNOWN_INSTANCE_TYPES.get(name)
    graviton = "g" in _INSTANCE_TYPE.fullmatch(name).group(3)
    if (spec is not None and not spec.amd64) or (spec is None and graviton):
        return f"{name!r} is an arm64 (Graviton) type, but the AMI and the Sirius images are amd64; use t3.medium"
    if spec is not None and spec.memory_mib < MIN_MEMORY_MIB:
        return (f"{name!r} has {spec.memory_mib / 1024:g} GiB of memory; Sirius needs at least "
                f"{MIN_MEMORY_MIB // 1024} GiB (its services reserve about 2.7 GB); use t3.medium")
    if spec is not None and spec.vcpus < MIN_VCPUS:
        return (f"{name!r} has {spec.vcpus} vCPU; sirius-ui asks for {MIN_VCPUS} (cpus: \"2\") and is not "
                "started on fewer; use t3.medium")
    return None
