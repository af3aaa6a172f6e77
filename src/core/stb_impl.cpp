// stb's implementations, compiled here only where no stb library is installed (Debian's libstb
// provides them; a GPU machine with only the headers does not). See CMakeLists.txt.
#ifdef LUMINARS_STB_IMPLEMENTATION
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb_image.h>
#include <stb_image_resize.h>
#include <stb_image_write.h>
#endif
