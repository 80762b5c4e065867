"""The jail's /etc: a shared copy of world-readable allowed entries, never a hostile directory."""

from __future__ import annotations

import os
import stat
import tempfile

from tttd.sandbox import jail


def test_etc_view_is_public_shared_and_not_hijackable(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(jail, "_etc_dir", None)
    d = jail.etc_view()
    assert os.path.dirname(d) == str(tmp_path) and os.path.basename(d).startswith(f"tttd-etc-{os.geteuid()}-")
    for root, dirs, files in os.walk(d):
        for n in files:
            st = os.lstat(os.path.join(root, n))
            assert stat.S_ISLNK(st.st_mode) or st.st_mode & 0o004, os.path.join(root, n)
    assert not os.path.exists(os.path.join(d, "shadow")) and not os.path.exists(os.path.join(d, "ssl", "private"))
    assert "root" in open(os.path.join(d, "passwd")).read()
    monkeypatch.setattr(jail, "_etc_dir", None)
    assert jail.etc_view() == d  # another process (here: a cleared cache) reuses it
    # a directory at that name that is writable by others is not trusted: a private copy is used
    monkeypatch.setattr(jail, "_etc_dir", None)
    os.chmod(d, 0o777)
    d2 = jail.etc_view()
    assert d2 != d and jail._trusted_dir(d2)
    os.chmod(d, 0o755)
