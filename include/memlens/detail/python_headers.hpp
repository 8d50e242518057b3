// memlens/detail/python_headers.hpp: CPython's <Python.h>, and <structmember.h> for the module's
// types, for the Python sources: from the include path where the build gives one (pkg-config
// python3-embed, CMake's Python3::Python), otherwise from the versioned folder that the
// development package installs in the system's include directory (Debian's python3-dev:
// python3.11/), so that those headers also compile on their own. Include it before any standard
// header: CPython sets feature macros they read.
#pragma once

#if __has_include(<Python.h>)
#include <Python.h>
#include <structmember.h>
#elif __has_include(<python3.13/Python.h>)
#include <python3.13/Python.h>
#include <python3.13/structmember.h>
#elif __has_include(<python3.12/Python.h>)
#include <python3.12/Python.h>
#include <python3.12/structmember.h>
#elif __has_include(<python3.11/Python.h>)
#include <python3.11/Python.h>
#include <python3.11/structmember.h>
#elif __has_include(<python3.10/Python.h>)
#include <python3.10/Python.h>
#include <python3.10/structmember.h>
#else
#error "memlens's Python sources need CPython's headers (<Python.h>; Debian: python3-dev)"
#endif
