# Imports the memlens_probe extension (tests/hosts/python_module.cpp) from the folder given as
# the first argument and uses it; exits non-zero when an expectation fails.
import sys

sys.path.insert(0, sys.argv[1])
import memlens_probe  # noqa: E402

per_round = sum(len("x" * 40 + str(k)) + k for k in range(50)) + 100
total = memlens_probe.churn(200)
if total != 200 * per_round:
    sys.exit(f"churn returned {total}, expected {200 * per_round}")
role = memlens_probe.hooks_role()
if role != 2:
    sys.exit(f"the module's hooks took role {role}, expected 2 (a bystander)")
print("memlens_probe: C++ containers in an RTLD_LOCAL extension work; its hooks stand by")
