"""sj_common.threads: the applications' CPU thread policy (run in subprocesses: it changes process state)."""

import json
import os
import subprocess
import sys

import pytest
from sj_common.threads import apply_thread_policy, default_threads

PROBE = """
import json, os, sys
{before}
from sj_common.threads import apply_thread_policy, openmp_loaded
loaded_before = openmp_loaded()
n = apply_thread_policy({arg})
import torch
print(json.dumps({{"n": n, "torch": torch.get_num_threads(), "policy": os.environ.get("OMP_WAIT_POLICY"),
                   "loaded_before": loaded_before, "loaded_after": openmp_loaded()}}))
"""


def _probe(arg: str, env_extra: dict, before: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    env.update(env_extra)
    code = PROBE.format(before=before, arg=arg)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_sets_passive_before_openmp_loads_and_defaults_to_one_thread():
    r = _probe("", {})
    assert r == {"n": 1, "torch": 1, "policy": "PASSIVE", "loaded_before": False, "loaded_after": True}


@pytest.mark.slow
def test_user_settings_win():
    r = _probe("", {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "ACTIVE"})
    assert (r["n"], r["torch"], r["policy"]) == (2, 2, "ACTIVE")
    r = _probe("3", {"OMP_NUM_THREADS": "2"})
    assert (r["n"], r["torch"]) == (3, 3)


@pytest.mark.slow
def test_after_torch_import_policy_is_left_alone():
    # GNU OpenMP read its variables at `import torch`: setting one afterwards would be a lie.
    r = _probe("2", {}, before="import torch")
    assert r["loaded_before"] is True
    assert r["policy"] is None
    assert (r["n"], r["torch"]) == (2, 2)


@pytest.mark.slow
def test_zero_means_every_usable_cpu():
    r = _probe("0", {})
    assert r["n"] == len(os.sched_getaffinity(0))


def test_default_threads_reads_omp_num_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "bogus")
    assert default_threads() == 1


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True])
def test_bad_threads_named(bad):
    with pytest.raises(ValueError, match=r"threads: expected None or an integer >= 0.*got"):
        apply_thread_policy(bad)


@pytest.mark.slow
def test_warns_when_more_threads_would_spin():
    # torch (hence OpenMP) already loaded, no wait policy set: more than one thread keeps the spinning default
    code = (
        "import os, warnings, torch\n"
        "from sj_common.threads import apply_thread_policy\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    apply_thread_policy(1)\n"
        "    assert not w, [str(x.message) for x in w]\n"
        "    apply_thread_policy(2)\n"
        "    assert len(w) == 1 and 'export OMP_WAIT_POLICY=PASSIVE' in str(w[0].message)\n"
        "    os.environ['OMP_WAIT_POLICY'] = 'PASSIVE'\n"
        "    apply_thread_policy(2)\n"
        "    assert len(w) == 1\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
