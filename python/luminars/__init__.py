"""LuminaRS from Python: text-to-image, image-to-image and inpainting with a LuminaRS model folder.

    from luminars import Pipeline
    pipe = Pipeline("models/emoji")
    pipe("a green apple", seed=3, steps=12).save("apple.png")

A thin layer over libluminars.so (include/luminars.h) through ctypes: the pictures are the ones
`luminars generate` draws with the same settings, bit for bit.
"""
import ctypes
import os
import random
import threading

from . import _capi

__all__ = ["Pipeline", "LuminarsError", "Cancelled", "__version__"]

_lib = _capi.load_library()
__version__ = _lib.luminars_version().decode()

_MAX_SEED = 4294967295


class LuminarsError(RuntimeError):
    """A call into libluminars failed; the message names the file or setting at fault."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Cancelled(LuminarsError):
    """The progress callback asked to stop."""


def _check(status):
    if status == _capi.OK:
        return
    message = _lib.luminars_last_error().decode("utf-8", "replace") or _lib.luminars_error_message(status).decode()
    if status == _capi.CANCELLED:
        raise Cancelled(status, message)
    if status == _capi.INVALID_ARGUMENT:
        raise ValueError(message)
    if status == _capi.OUT_OF_MEMORY:
        raise MemoryError(message)
    raise LuminarsError(status, message)


def _rgb_array(picture, what):
    """A C-contiguous H×W×3 uint8 array of a PIL image, a numpy array or a path."""
    import numpy as np

    if isinstance(picture, (str, bytes)) or hasattr(picture, "__fspath__"):
        from PIL import Image

        with Image.open(picture) as opened:
            picture = opened.convert("RGB")
    if hasattr(picture, "convert") and hasattr(picture, "mode"):  # a PIL image
        picture = np.asarray(picture.convert("RGB"))
    array = np.asarray(picture)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"{what} must be an RGB picture: a PIL image or an H×W×3 uint8 array, got {array.dtype} {array.shape}")
    return np.ascontiguousarray(array)


def _image_view(array):
    h, w, _ = array.shape
    return _capi.Image(array.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), w, h)


class _Progress:
    """The C progress callback: a tqdm bar, a Python callable, or both; remembers an exception."""

    def __init__(self, progress, callback):
        self.bar = None
        self.show = progress
        self.callback = callback
        self.error = None
        self.c_function = _capi.PROGRESS_FN(self._step)

    def _step(self, step, steps, _user_data):
        try:
            if self.show and self.bar is None:
                try:
                    from tqdm.auto import tqdm
                except ImportError:  # tqdm is optional: no bar without it
                    self.show = False
                else:
                    self.bar = tqdm(total=steps, unit="step", leave=False)
            if self.bar is not None:
                self.bar.update(step - self.bar.n)
            if self.callback is not None and self.callback(step, steps):
                return 1
            return 0
        except BaseException as e:  # noqa: BLE001 - raised again after the C call returns
            self.error = e
            return 1

    def close(self):
        if self.bar is not None:
            self.bar.close()


class Pipeline:
    """A loaded model folder. Calls on one Pipeline are serialised; several may run side by side.

    device: "auto" (CUDA when present), "cpu", "cuda" or "cuda:N".
    precision: "auto" (bfloat16 on CUDA and on CPUs with native bf16, as `luminars generate`) or "float32".
    threads: CPU threads for the whole process (0: every available core).
    low_memory: load each part when needed and release it after.
    lora_dir: where a prompt's <lora:NAME:WEIGHT> finds NAME.safetensors (default: MODEL_DIR/loras).
    """

    def __init__(self, model_dir, *, device="auto", precision="auto", threads=0, low_memory=False, vae_tile=320,
                 lora_dir=None):
        if precision not in ("auto", "float32"):
            raise ValueError(f"precision must be 'auto' or 'float32', got {precision!r}")
        params = _capi.ModelParams()
        _lib.luminars_model_params_defaults(ctypes.byref(params))
        params.device = str(device).encode()
        params.precision = _capi.PRECISION_AUTO if precision == "auto" else _capi.PRECISION_FLOAT32
        params.threads = int(threads)
        params.low_memory = 1 if low_memory else 0
        params.vae_tile = int(vae_tile)
        if lora_dir is not None:
            params.lora_dir = str(lora_dir).encode()
        handle = ctypes.c_void_p()
        self._handle = None
        _check(_lib.luminars_model_load(str(model_dir).encode(), ctypes.byref(params), ctypes.byref(handle)))
        self._handle = handle
        self._lock = threading.Lock()
        self.model_dir = str(model_dir)

    @property
    def resolution(self):
        """The picture side the model was trained at (the default output size)."""
        return _lib.luminars_model_resolution(self._live())

    @property
    def size_multiple(self):
        """Widths and heights must be multiples of this."""
        return _lib.luminars_model_size_multiple(self._live())

    def _live(self):
        if self._handle is None:
            raise ValueError("this Pipeline is closed")
        return self._handle

    def __call__(self, prompt, *, negative=None, seed=None, steps=None, guidance=None, shift=None, sampler=None,
                 width=None, height=None, batch=None, init_image=None, strength=None, mask=None, mask_blur=4,
                 hires_from=None, hires_strength=None, loras=None, progress=True, callback=None, output="pil"):
        """Draws a picture (a list of `batch` pictures when batch is given).

        seed: 0 to 4294967295 (picture i of a batch uses seed + i); None: a random one.
        steps, guidance, shift, sampler ("euler" | "heun"): None for the model folder's defaults.
        width, height: the output size; default: the init image's size, else the model's resolution.
        init_image (image-to-image) and mask (inpainting, white repaints): PIL images, H×W×3 uint8
        arrays or paths. strength in (0, 1]; default 0.75, or 1 when inpainting.
        hires_from, hires_strength: two passes for text-to-image pictures larger than hires_from
        pixels (drawn at that size first, then upscaled and redrawn at hires_strength in (0, 1]);
        hires_from 0: one pass; None: the model folder's default (luminars.json sampler.hires_fix).
        loras: LoRA files for this call, each a path or (path, weight) (weight 1 when not given;
        negative pushes the style away); the loaded model stays unchanged. The prompt may also name
        them as <lora:NAME:WEIGHT>.
        progress: a tqdm bar (when tqdm is installed). callback(step, steps): called after each
        step; a true result cancels (raises Cancelled).
        output: "pil" (PIL images, with the seed in .info["seed"]) or "numpy" (H×W×3 uint8 arrays;
        one N×H×W×3 array for a batch).
        """
        import numpy as np

        if output not in ("pil", "numpy"):
            raise ValueError(f"output must be 'pil' or 'numpy', got {output!r}")
        count = 1 if batch is None else int(batch)
        if seed is None:
            seed = random.randrange(_MAX_SEED - count + 2)
        if not 0 <= int(seed) <= _MAX_SEED:
            raise ValueError(f"seed must be from 0 to {_MAX_SEED}, got {seed}")

        params = _capi.GenerateParams()
        _lib.luminars_generate_params_defaults(ctypes.byref(params))
        params.prompt = str(prompt).encode()
        if negative is not None:
            params.negative = str(negative).encode()
        params.seed = int(seed)
        if steps is not None:
            params.steps = int(steps)
            if params.steps < 1:
                raise ValueError(f"steps must be from 1 to 1000, got {steps}")
        if guidance is not None:
            params.guidance = float(guidance)
        if shift is not None:
            params.shift = float(shift)
        if sampler is not None:
            params.sampler = str(sampler).encode()
        keep = []  # arrays whose memory the C call reads
        if init_image is not None:
            init = _rgb_array(init_image, "init_image")
            keep.append(init)
            init_view = _image_view(init)
            params.init_image = ctypes.pointer(init_view)
            if height is None and width is None:
                height, width = init.shape[:2]
        if mask is not None:
            if init_image is None:
                raise ValueError("a mask needs an init image (inpainting)")
            mask_array = _rgb_array(mask, "mask")
            keep.append(mask_array)
            mask_view = _image_view(mask_array)
            params.mask = ctypes.pointer(mask_view)
        if strength is not None:
            params.strength = float(strength)
            if not 0 < params.strength <= 1:
                raise ValueError(f"strength must be in (0, 1], got {strength}")
        params.mask_blur = int(mask_blur)
        if hires_from is not None:
            params.hires_from = int(hires_from)
            if not 0 <= params.hires_from <= 4096:
                raise ValueError(f"hires_from must be 0 (one pass) or a side up to 4096, got {hires_from}")
        if hires_strength is not None:
            params.hires_strength = float(hires_strength)
            if not 0 < params.hires_strength <= 1:
                raise ValueError(f"hires_strength must be in (0, 1], got {hires_strength}")
        if loras:
            specs = [(l, 1.0) if isinstance(l, (str, bytes, os.PathLike)) else tuple(l) for l in loras]
            lora_array = (_capi.Lora * len(specs))(*[_capi.Lora(os.fsencode(p), float(w)) for p, w in specs])
            keep.append(lora_array)
            params.loras = ctypes.cast(lora_array, ctypes.POINTER(_capi.Lora))
            params.lora_count = len(specs)
        width = int(width or self.resolution)
        height = int(height or self.resolution)

        out = np.empty((count, height, width, 3), dtype=np.uint8)
        views = (_capi.Image * count)(*[_image_view(out[i]) for i in range(count)])
        reporter = _Progress(progress, callback)
        if progress or callback is not None:
            params.progress = reporter.c_function
        with self._lock:
            try:
                status = _lib.luminars_generate(self._live(), ctypes.byref(params), views, count)
            finally:
                reporter.close()
        if reporter.error is not None:
            raise reporter.error
        _check(status)

        if output == "numpy":
            return out if batch is not None else out[0]
        from PIL import Image

        pictures = []
        for i in range(count):
            picture = Image.fromarray(out[i], "RGB")
            picture.info["seed"] = int(seed) + i
            pictures.append(picture)
        return pictures if batch is not None else pictures[0]

    def close(self):
        """Frees the model (also done when the Pipeline is garbage-collected)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            _lib.luminars_model_free(handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
