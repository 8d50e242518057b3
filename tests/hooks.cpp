// The suite runs with memlens's global operator new / delete hooks, as a profiled program would.
#include <memlens/hooks.hpp>
