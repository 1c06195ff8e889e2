// Anchor translation unit for the header-only test helpers.
#include "tests/testing/status_matchers.h"
