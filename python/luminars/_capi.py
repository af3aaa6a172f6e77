"""ctypes declarations of include/luminars.h and the search for libluminars.so."""
import ctypes
import ctypes.util
import os
from pathlib import Path

OK, INVALID_ARGUMENT, FAILED, CANCELLED, OUT_OF_MEMORY, INTERNAL = range(6)
PRECISION_AUTO, PRECISION_FLOAT32 = 0, 1


class Image(ctypes.Structure):
    _fields_ = [("data", ctypes.POINTER(ctypes.c_uint8)), ("width", ctypes.c_int), ("height", ctypes.c_int)]


class ModelParams(ctypes.Structure):
    _fields_ = [
        ("device", ctypes.c_char_p),
        ("precision", ctypes.c_int),
        ("threads", ctypes.c_int),
        ("low_memory", ctypes.c_int),
        ("vae_tile", ctypes.c_int),
        ("lora_dir", ctypes.c_char_p),
    ]


class Lora(ctypes.Structure):
    _fields_ = [("path", ctypes.c_char_p), ("weight", ctypes.c_double)]


PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


class GenerateParams(ctypes.Structure):
    _fields_ = [
        ("prompt", ctypes.c_char_p),
        ("negative", ctypes.c_char_p),
        ("seed", ctypes.c_uint64),
        ("steps", ctypes.c_int),
        ("guidance", ctypes.c_double),
        ("shift", ctypes.c_double),
        ("sampler", ctypes.c_char_p),
        ("init_image", ctypes.POINTER(Image)),
        ("strength", ctypes.c_double),
        ("mask", ctypes.POINTER(Image)),
        ("mask_blur", ctypes.c_int),
        ("loras", ctypes.POINTER(Lora)),
        ("lora_count", ctypes.c_size_t),
        ("progress", PROGRESS_FN),
        ("progress_user_data", ctypes.c_void_p),
        ("hires_from", ctypes.c_int),
        ("hires_strength", ctypes.c_double),
    ]


def _candidates():
    """Where libluminars.so may be, in the order searched."""
    env = os.environ.get("LUMINARS_LIBRARY")
    if env:
        return [Path(env)]
    here = Path(__file__).resolve().parent
    found = [here / "libluminars.so"]  # bundled by `pip install`
    for up in (here.parent.parent, Path.cwd()):  # a checkout: python/luminars -> build/
        found.append(up / "build" / "libluminars.so")
    system = ctypes.util.find_library("luminars")  # installed with `cmake --install`
    if system:
        found.append(Path(system))
    return found


# The C interface these structures mirror: libluminars MAJOR.MINOR (before 1.0 a minor version may
# change luminars_generate_params; 0.2 added hires_from and hires_strength).
ABI = (0, 2)


def abi_problem(version, path):
    """Why a library of this version cannot serve this package (None when it can)."""
    parts = version.split(".")
    if tuple(int(p) for p in parts[:2] if p.isdigit()) == ABI:
        return None
    return f"{path} is libluminars {version}; this package needs {ABI[0]}.{ABI[1]} (rebuild: scripts/build.sh)"


def load_library():
    candidates = _candidates()
    problems = []
    for path in candidates:
        if path.is_absolute() and not path.exists():
            continue
        try:
            lib = ctypes.CDLL(str(path))
        except OSError as e:
            if os.environ.get("LUMINARS_LIBRARY"):
                raise ImportError(f"LUMINARS_LIBRARY={path}: cannot load it: {e}") from e
            continue
        _declare(lib)
        problem = abi_problem(lib.luminars_version().decode(), path)
        if problem:
            if os.environ.get("LUMINARS_LIBRARY"):
                raise ImportError(f"LUMINARS_LIBRARY={problem}")
            problems.append(problem)
            continue
        return lib
    if problems:
        raise ImportError("; ".join(problems))
    tried = ", ".join(str(p) for p in candidates)
    raise ImportError(
        "libluminars.so not found (tried " + tried + "): build it (scripts/build.sh) or set LUMINARS_LIBRARY"
    )


def _declare(lib):
    lib.luminars_version.restype = ctypes.c_char_p
    lib.luminars_version.argtypes = []
    lib.luminars_error_message.restype = ctypes.c_char_p
    lib.luminars_error_message.argtypes = [ctypes.c_int]
    lib.luminars_last_error.restype = ctypes.c_char_p
    lib.luminars_last_error.argtypes = []
    lib.luminars_model_params_defaults.restype = None
    lib.luminars_model_params_defaults.argtypes = [ctypes.POINTER(ModelParams)]
    lib.luminars_model_load.restype = ctypes.c_int
    lib.luminars_model_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(ModelParams), ctypes.POINTER(ctypes.c_void_p)]
    lib.luminars_model_free.restype = None
    lib.luminars_model_free.argtypes = [ctypes.c_void_p]
    lib.luminars_model_resolution.restype = ctypes.c_int
    lib.luminars_model_resolution.argtypes = [ctypes.c_void_p]
    lib.luminars_model_size_multiple.restype = ctypes.c_int
    lib.luminars_model_size_multiple.argtypes = [ctypes.c_void_p]
    lib.luminars_generate_params_defaults.restype = None
    lib.luminars_generate_params_defaults.argtypes = [ctypes.POINTER(GenerateParams)]
    lib.luminars_generate.restype = ctypes.c_int
    lib.luminars_generate.argtypes = [ctypes.c_void_p, ctypes.POINTER(GenerateParams), ctypes.POINTER(Image), ctypes.c_size_t]
