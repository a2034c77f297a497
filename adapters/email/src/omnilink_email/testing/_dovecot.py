"""A throwaway Dovecot IMAP server on 127.0.0.1 for tests and benchmarks.

Needs Debian's ``dovecot-imapd`` (``/usr/sbin/dovecot``); ``ensure_dovecot()`` installs it
with apt-get when it is missing and we are root. Everything lives in one temporary directory:
config, passwd-file, maildirs, sockets and the log.
"""

from __future__ import annotations

import imaplib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from ._smtp import free_port

DOVECOT = "/usr/sbin/dovecot"

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
shutdown_clients = yes
listen = 127.0.0.1
ssl = no
{cleartext}
auth_mechanisms = plain login
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
{login_chroot}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


def ensure_dovecot() -> str | None:
    """The reason Dovecot cannot run here, or None when it can (installing it if we may)."""
    if Path(DOVECOT).exists():
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{DOVECOT} is missing (install Debian's dovecot-imapd)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "dovecot-imapd"]):
        done = subprocess.run(command, env=env, capture_output=True, timeout=600, check=False)
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {done.stderr.decode(errors='replace')[-300:]}"
    return None if Path(DOVECOT).exists() else "dovecot-imapd installed but /usr/sbin/dovecot is missing"


def _version() -> str:
    done = subprocess.run([DOVECOT, "--version"], capture_output=True, timeout=10, check=False)
    return done.stdout.decode().strip()


class Dovecot:
    """A Dovecot serving one mailbox user (``user`` / ``password``) on 127.0.0.1:``port``.

    ```python
    with Dovecot(tmp_path) as server:
        server.deliver(raw_message)       # straight into the maildir, as an MDA would
        server.append(raw_message)        # or over IMAP APPEND
    ```
    """

    def __init__(
        self, root: Path | None = None, *, user: str = "support@acme.test", password: str = "secret"
    ) -> None:
        # Dovecot's unprivileged processes must reach the directory: pytest's tmp_path is 0700,
        # so by default we make our own, world-traversable one (removed by stop()).
        self._owns_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="omnilink-dovecot-")) if root is None else Path(root)
        self.user = user
        self.password = password
        self.host = "127.0.0.1"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._seq = itertools.count()
        self._root_mode = os.geteuid() == 0

    @property
    def maildir(self) -> Path:
        return self.root / "mail" / self.user

    def _owner(self) -> tuple[int, int]:
        if self._root_mode:
            entry = pwd.getpwnam("dovecot")
            return entry.pw_uid, entry.pw_gid
        return os.geteuid(), os.getegid()

    def _write_config(self) -> Path:
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("new", "cur", "tmp"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        uid, gid = self._owner()
        if self._root_mode:
            for path in [
                self.root / "mail",
                self.maildir,
                *(self.maildir / s for s in ("new", "cur", "tmp")),
            ]:
                os.chown(path, uid, gid)
            os.chmod(self.root, 0o755)
        (self.root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n")
        os.chmod(self.root / "passwd", 0o644)
        me = pwd.getpwuid(os.geteuid()).pw_name
        cleartext = (
            "auth_allow_cleartext = yes" if _version().startswith("2.4") else "disable_plaintext_auth = no"
        )
        config = _CONFIG.format(
            root=self.root,
            port=self.port,
            cleartext=cleartext,
            login_user="dovenull" if self._root_mode else me,
            internal_user="dovecot" if self._root_mode else me,
            mail_user=uid,
            mail_group=gid,
            login_chroot="" if self._root_mode else "  chroot =",
        )
        path = self.root / "dovecot.conf"
        path.write_text(config)
        return path

    def start(self, timeout: float = 15.0) -> Dovecot:
        if self._process is not None:
            return self
        self.port = self.port or free_port(self.host)
        config = self._write_config()
        self._process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                self._process = None
                raise RuntimeError(f"dovecot exited: {err.strip()} {self.log()[-500:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not start within {timeout}s: {self.log()[-500:]}")

    def kick(self) -> None:
        """Disconnect every IMAP session of the user (``doveadm kick``), as an admin or a
        server-side timeout would."""
        doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
        done = subprocess.run(
            [doveadm, "-c", str(self.root / "dovecot.conf"), "kick", self.user],
            capture_output=True,
            timeout=30,
            check=False,
        )
        if done.returncode not in (0, 68):  # 68: nobody was connected
            raise RuntimeError(f"doveadm kick failed: {done.stderr.decode(errors='replace')}")

    def restart(self) -> None:
        """Stop and start again on the same port with the same mailboxes (a server restart)."""
        self._halt()
        self.start()

    def stop(self) -> None:
        self._halt()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def _halt(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def deliver(self, raw: bytes) -> Path:
        """Drop a message into the INBOX maildir (``new/``), the way a local MDA delivers."""
        name = f"{time.time_ns()}.P{os.getpid()}Q{next(self._seq)}.omnilink"
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(raw)
        if self._root_mode:
            os.chown(tmp, *self._owner())
        final = self.maildir / "new" / name
        os.rename(tmp, final)
        return final

    def append(self, raw: bytes, mailbox: str = "INBOX") -> None:
        """Add a message over IMAP APPEND (blocking; stdlib imaplib)."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            client.login(self.user, self.password)
            status, detail = client.append(mailbox, None, None, raw)
            if status != "OK":
                raise RuntimeError(f"APPEND refused: {detail!r}")
        finally:
            client.logout()

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
