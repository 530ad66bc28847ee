"""Fixtures that run real Postfix and Dovecot (see tests/daemons.py).

One lab per test module: a module that needs other mailboxes or peers defines its
own module-scoped ``lab_config`` fixture, and ``mail_lab`` starts that instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from daemons import LabConfig, MailLab, missing_requirements, tenant_lab_config


@pytest.fixture(scope="module")
def lab_config() -> LabConfig:
    """The lab a module gets unless it defines its own ``lab_config``."""
    return tenant_lab_config()


@pytest.fixture(scope="module")
def mail_lab(lab_config: LabConfig) -> Iterator[MailLab]:
    """A started lab, stopped (every process, by pid) and removed after the module,
    whether its tests passed or not. Skips when not root or the Debian packages are
    missing."""
    reason = missing_requirements()
    if reason is not None:
        pytest.skip(reason)
    with MailLab(lab_config) as lab:
        yield lab
