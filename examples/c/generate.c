/* Draws one picture with libluminars and writes it as a PNG: the C API from loading to freeing.
 *   generate_c MODEL_DIR PROMPT SEED OUT.png
 * The picture is the one `luminars generate --model MODEL_DIR --prompt PROMPT --seed SEED` draws.
 * Build: cc -std=c99 generate.c $(pkg-config --cflags --libs luminars) -lstb */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <luminars.h>

#ifdef LUMINARS_EXAMPLE_STB_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#endif
#include <stb_image_write.h>

static int show_progress(int step, int steps, void* user_data) {
  (void)user_data;
  fprintf(stderr, "\rstep %d/%d", step, steps);
  if (step == steps) fputc('\n', stderr);
  return 0; /* nonzero would cancel */
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s MODEL_DIR PROMPT SEED OUT.png\n", argv[0]);
    return 2;
  }
  char* end = NULL;
  errno = 0;
  uintmax_t seed = strtoumax(argv[3], &end, 10);
  if (errno != 0 || end == argv[3] || *end != '\0' || argv[3][0] == '-' || seed > 4294967295u) {
    fprintf(stderr, "error: SEED must be a whole number from 0 to 4294967295, got '%s'\n", argv[3]);
    return 2;
  }

  luminars_model* model = NULL;
  if (luminars_model_load(argv[1], NULL, &model) != LUMINARS_OK) {
    fprintf(stderr, "error: %s\n", luminars_last_error());
    return 1;
  }

  luminars_generate_params params;
  luminars_generate_params_defaults(&params);
  params.prompt = argv[2];
  params.seed = (uint64_t)seed;
  params.progress = show_progress;

  int side = luminars_model_resolution(model);
  luminars_image image;
  image.width = side;
  image.height = side;
  image.data = malloc((size_t)side * (size_t)side * 3);
  if (!image.data) {
    fprintf(stderr, "error: out of memory\n");
    luminars_model_free(model);
    return 1;
  }

  int rc = 0;
  luminars_status status = luminars_generate(model, &params, &image, 1);
  if (status != LUMINARS_OK) {
    fprintf(stderr, "error: %s\n", luminars_last_error());
    rc = 1;
  } else if (!stbi_write_png(argv[4], image.width, image.height, 3, image.data, image.width * 3)) {
    fprintf(stderr, "error: cannot write %s\n", argv[4]);
    rc = 1;
  } else {
    printf("wrote %s (%dx%d, seed %" PRIu64 ")\n", argv[4], image.width, image.height, params.seed);
  }
  free(image.data);
  luminars_model_free(model);
  return rc;
}
