/* LuminaRS: text-to-image, image-to-image and inpainting with a LuminaRS model folder.
 * The C API of libluminars (C99; no LibTorch or C++ in this header). Link with -lluminars
 * (pkg-config luminars, or CMake's find_package(luminars) and luminars::luminars).
 *
 *   luminars_model* model;
 *   if (luminars_model_load("models/emoji", NULL, &model) != LUMINARS_OK) {
 *     fprintf(stderr, "%s\n", luminars_last_error());
 *     return 1;
 *   }
 *   luminars_generate_params p;
 *   luminars_generate_params_defaults(&p);
 *   p.prompt = "a green apple";
 *   p.seed = 3;
 *   int side = luminars_model_resolution(model);
 *   luminars_image out = {malloc((size_t)side * side * 3), side, side};
 *   luminars_status s = luminars_generate(model, &p, &out, 1);
 *   ...
 *   luminars_model_free(model);
 *
 * Threads: every function may be called from any thread. Calls on one model are serialised (a
 * second thread waits for the first call to finish); different models run side by side.
 * luminars_last_error() is kept per thread. The progress callback runs on the calling thread.
 *
 * Ownership: the library never keeps or frees a pointer it was given; images are the caller's
 * buffers, read (inputs) or written (outputs) only during the call. Strings returned by the library
 * are static or thread-local and must not be freed.
 */
#ifndef LUMINARS_H
#define LUMINARS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(LUMINARS_API)
#define LUMINARS_API __attribute__((visibility("default")))
#elif !defined(LUMINARS_API)
#define LUMINARS_API
#endif

#define LUMINARS_VERSION_MAJOR 0
#define LUMINARS_VERSION_MINOR 2
#define LUMINARS_VERSION_PATCH 0

/* The library's version, "MAJOR.MINOR.PATCH". */
LUMINARS_API const char* luminars_version(void);

typedef enum luminars_status {
  LUMINARS_OK = 0,
  LUMINARS_ERROR_INVALID_ARGUMENT = 1, /* a NULL pointer, a bad size or value in the parameters */
  LUMINARS_ERROR_FAILED = 2,           /* a missing or unreadable file, a refused model or request */
  LUMINARS_ERROR_CANCELLED = 3,        /* the progress callback asked to stop */
  LUMINARS_ERROR_OUT_OF_MEMORY = 4,
  LUMINARS_ERROR_INTERNAL = 5          /* anything else (a bug: please report it) */
} luminars_status;

/* A fixed description of a status ("cancelled"). */
LUMINARS_API const char* luminars_error_message(luminars_status status);
/* The one-line message of the last call that failed on this thread, naming the file or parameter
 * at fault ("" when none failed). Valid until the next failing call on this thread. */
LUMINARS_API const char* luminars_last_error(void);

/* An 8-bit RGB picture: width * height * 3 bytes, row by row, owned by the caller. */
typedef struct luminars_image {
  uint8_t* data;
  int width, height;
} luminars_image;

/* ---- Models ---------------------------------------------------------------------------------- */

typedef struct luminars_model luminars_model; /* opaque */

typedef enum luminars_precision {
  LUMINARS_PRECISION_AUTO = 0,   /* bfloat16 autocast on CUDA and on CPUs with native bf16, else float32 */
  LUMINARS_PRECISION_FLOAT32 = 1
} luminars_precision;

typedef struct luminars_model_params {
  const char* device;           /* "auto" (CUDA when present), "cpu", "cuda", "cuda:N"; NULL: "auto" */
  luminars_precision precision;
  int threads;                  /* CPU threads for the whole process; 0: every available core */
  int low_memory;               /* nonzero: load each part when needed and release it after */
  int vae_tile;                 /* decode pictures larger than this side in tiles; 0: never */
  const char* lora_dir;         /* where a prompt's <lora:NAME:WEIGHT> finds NAME.safetensors; NULL: MODEL_DIR/loras */
} luminars_model_params;

/* Fills the defaults: "auto", LUMINARS_PRECISION_AUTO, 0 threads, low_memory 0, vae_tile 320,
 * lora_dir NULL (the settings of `luminars generate`). */
LUMINARS_API void luminars_model_params_defaults(luminars_model_params* params);

/* Loads a model folder (luminars.json, denoiser/, text_encoder/, tokenizer/, vae/). params may be
 * NULL for the defaults. On success *model is set; free it with luminars_model_free. */
LUMINARS_API luminars_status luminars_model_load(const char* model_dir, const luminars_model_params* params,
                                                 luminars_model** model);
/* Frees a model (NULL is ignored). No call on it may be running. */
LUMINARS_API void luminars_model_free(luminars_model* model);

/* The picture side the model was trained at (the usual output size), and the step every width and
 * height must be a multiple of. 0 for a NULL model. */
LUMINARS_API int luminars_model_resolution(const luminars_model* model);
LUMINARS_API int luminars_model_size_multiple(const luminars_model* model);

/* ---- LoRAs ----------------------------------------------------------------------------------- */
/* A LoRA file (`luminars train-lora`) and its weight (1: as trained; negative pushes its style
 * away). LoRAs apply to one luminars_generate call, unmerged: the loaded model stays untouched, so
 * calls with different LoRAs need no reload. A prompt may also name them as <lora:NAME:WEIGHT>. */
typedef struct luminars_lora {
  const char* path;
  double weight;
} luminars_lora;

/* ---- Generation ------------------------------------------------------------------------------ */

/* Called after each sampling step with the step done (1..steps); return nonzero to cancel, and
 * luminars_generate returns LUMINARS_ERROR_CANCELLED. */
typedef int (*luminars_progress_fn)(int step, int steps, void* user_data);

typedef struct luminars_generate_params {
  const char* prompt;                /* required (may be "") */
  const char* negative;              /* what to steer away from; NULL or "": the unconditional prompt */
  uint64_t seed;                     /* picture i of a batch uses seed + i */
  int steps;                         /* 0: the model folder's default */
  double guidance;                   /* classifier-free guidance scale; < 0: the folder's default */
  double shift;                      /* time shift of the schedule; <= 0: the folder's default */
  const char* sampler;               /* "euler" or "heun"; NULL: the folder's default */
  /* Image-to-image: start from init_image (scaled to cover the output and centre-cropped). */
  const luminars_image* init_image;  /* NULL: text-to-image */
  double strength;                   /* in (0, 1]: how much to change; 0: 0.75, or 1 when inpainting */
  /* Inpainting (with init_image, of its size): white repaints, black keeps. */
  const luminars_image* mask;        /* NULL: no inpainting */
  int mask_blur;                     /* soft edge in pixels */
  const luminars_lora* loras;        /* lora_count LoRAs besides those the prompt names; NULL: none */
  size_t lora_count;
  luminars_progress_fn progress;     /* NULL: none */
  void* progress_user_data;
  /* Two passes for text-to-image pictures larger than the model draws best (the hires fix): first
   * at hires_from pixels (the longer side, the other in proportion), then upscaled and redrawn at
   * hires_strength from the same seeds. (Added in 0.2: code built against 0.1's header must be
   * rebuilt, as the struct grew; the library's soname says so.) */
  int hires_from;                    /* -1: the folder's default (luminars.json sampler.hires_fix); 0: one pass */
  double hires_strength;             /* in (0, 1]; 0: the folder's default */
} luminars_generate_params;

/* Fills the defaults: prompt "", seed 0, the folder's sampler settings, no init image or mask,
 * strength 0, mask_blur 4, no LoRAs, no progress callback, hires_from -1 and hires_strength 0
 * (the folder's two-pass default). */
LUMINARS_API void luminars_generate_params_defaults(luminars_generate_params* params);

/* Draws `count` pictures (1 to 64, seeds seed .. seed + count - 1) into the caller's images, which
 * must all have the same width and height (the output size: positive multiples of
 * luminars_model_size_multiple, at most 4096) and data of width * height * 3 bytes.
 * The same model folder, prompt, seed and settings draw the same pixels as `luminars generate`. */
LUMINARS_API luminars_status luminars_generate(luminars_model* model, const luminars_generate_params* params,
                                               luminars_image* images, size_t count);

#ifdef __cplusplus
}
#endif

#endif /* LUMINARS_H */
