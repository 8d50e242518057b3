// libmemlens_preload.so: memlens for a program that was not built with it. Loaded with
// LD_PRELOAD (memlens-run does that), it replaces the malloc family and operator new / delete
// of the whole process, counts what it maps with mmap, and writes the report that the MEMLENS_*
// variables ask for at exit.
#include <memlens/sources/malloc.hpp>
#include <memlens/sources/mmap.hpp>

#include <memlens/hooks.hpp>
