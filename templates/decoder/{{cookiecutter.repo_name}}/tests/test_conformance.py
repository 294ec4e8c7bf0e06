"""Backend conformance: the checks `tf-scaffold check --trust-remote-code` runs, on this repo.

`conformance.py` is a verbatim copy of tf-scaffold's checks: static ones read the files, dynamic ones run the model
on CPU the way vLLM and SGLang call it (meta-device build, attention probe, packed sequences, tensor-parallel run
over gloo, pipeline split).
"""

import pytest
{%- if cookiecutter.multimodal %}
from conformance import DYNAMIC_IDS, ERROR, RULES, dynamic_checks, static_checks

CHECK_IDS = DYNAMIC_IDS  # the image checks (TFS120-TFS125) included
{%- else %}
from conformance import DYNAMIC_IDS, ERROR, MM_IDS, RULES, dynamic_checks, static_checks

# The image checks (TFS120-TFS125) apply to multimodal repos only.
CHECK_IDS = [i for i in DYNAMIC_IDS if i not in MM_IDS]
{%- endif %}


def test_static_conformance(repo):
    errors = [f for f in static_checks(repo) if f.severity == ERROR]
    assert not errors, "\n".join(map(str, errors))


@pytest.fixture(scope="module")
def dynamic(repo):
    return dynamic_checks(repo)


@pytest.mark.parametrize("check_id", CHECK_IDS)
def test_dynamic_conformance(dynamic, check_id):
    findings, ran, skipped = dynamic
    if check_id in skipped:
        pytest.skip(f"{check_id}: {skipped[check_id]}")
    assert check_id in ran, f"{check_id} neither ran nor was skipped with a reason"
    errors = [f for f in findings if f.id == check_id]
    assert not errors, f"{RULES[check_id][0]}:\n" + "\n".join(map(str, errors))
