// Anchor translation unit for the header-only status helpers.
#include "common/status_macros.h"
