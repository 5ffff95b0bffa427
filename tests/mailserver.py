"""Real mail servers on loopback for the e-mail channel's tests.

- `Dovecot`: a private Dovecot instance (Debian's dovecot-imapd) with its whole configuration,
  state and mail in a temporary folder, IMAP on a loopback port, users in a passwd-file. No
  system configuration is read (`dovecot -c OUR_FILE`), and it is stopped at the end.
- `Smtp`: aiosmtpd's SMTP server (with AUTH PLAIN/LOGIN over plain text, acceptable on
  loopback) that hands each accepted message to Dovecot's LDA (`dovecot-lda -d USER`), as an
  MTA does, before answering 250. A recipient it does not know gets 550; one in `tempfail`
  gets 451.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import grp
import shutil
import socket
import subprocess
import tempfile
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
LDA = "/usr/lib/dovecot/dovecot-lda"


def dovecot_missing() -> str | None:
    """Why Dovecot cannot run here, or None."""
    if not Path(DOVECOT).exists() or not Path(LDA).exists():
        return "Dovecot is not installed (apt-get install dovecot-imapd)"
    if not Path("/usr/lib/dovecot/imap").exists():
        return "Dovecot's IMAP server is not installed (apt-get install dovecot-imapd)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dovecot:
    def __init__(self, users: dict[str, str]):
        self.users = dict(users)
        self.dir = Path(tempfile.mkdtemp(prefix="pressflow-dovecot-"))
        self.port = free_port()
        self.conf = self.dir / "dovecot.conf"
        self.proc: subprocess.Popen | None = None
        if os.geteuid() == 0:
            # Dovecot refuses mail for uid 0 and runs its helpers as its own system users.
            self.mail_user, self.mail_group = "nobody", grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
            internal, login = "dovecot", "dovenull"
        else:
            me = pwd.getpwuid(os.getuid())
            self.mail_user, self.mail_group = me.pw_name, grp.getgrgid(me.pw_gid).gr_name
            internal = login = me.pw_name

        self.dir.chmod(0o755)
        for sub in ("run", "state", "home"):
            (self.dir / sub).mkdir()
        (self.dir / "passwd").write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in self.users.items()))
        if os.geteuid() == 0:
            uid = pwd.getpwnam(self.mail_user).pw_uid
            os.chown(self.dir / "home", uid, -1)
        d = self.dir
        self.conf.write_text(f"""
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_internal_group = {grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name}
default_login_user = {login}
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_uid = {self.mail_user}
mail_gid = {self.mail_group}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {d}/passwd
}}
userdb {{
  driver = static
  args = home={d}/home/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
namespace inbox {{
  inbox = yes
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
}}
""")

    def start(self) -> "Dovecot":
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.conf)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.proc.stdout.read().decode(errors='replace')}"
                                   f"{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"dovecot did not listen on {self.port}: {self.log()}")

    def log(self) -> str:
        path = self.dir / "dovecot.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def deliver(self, user: str, sender: str, data: bytes) -> None:
        """Dovecot's LDA files the message into `user`'s INBOX (as an MTA would hand it over)."""
        result = subprocess.run([LDA, "-c", str(self.conf), "-d", user, "-f", sender],
                                input=data, capture_output=True, timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"dovecot-lda exited {result.returncode}: "
                               f"{result.stderr.decode(errors='replace')} {self.log()}")

    def imap(self, user: str) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        conn.login(user, self.users[user])
        return conn

    def messages(self, user: str, mailbox: str = "INBOX") -> list[EmailMessage]:
        """Every message in the mailbox, read back over IMAP, parsed."""
        conn = self.imap(user)
        try:
            conn.select(f'"{mailbox}"', readonly=True)
            _, data = conn.uid("SEARCH", None, "ALL")
            out = []
            for uid in data[0].split():
                _, parts = conn.uid("FETCH", uid, "(BODY.PEEK[])")
                out.append(message_from_bytes(parts[0][1], policy=policy.default))
            return out
        finally:
            conn.logout()


class Smtp:
    """aiosmtpd delivering into Dovecot. `address` is host:port."""

    def __init__(self, dovecot: Dovecot, *, domain: str, login: tuple[str, str] | None = None):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.dovecot = dovecot
        self.domain = domain
        self.tempfail: set[str] = set()
        self.received: list[tuple[str, list[str]]] = []
        outer = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                local, _, dom = address.partition("@")
                if address in outer.tempfail:
                    return f"451 4.3.0 <{address}>: mailbox busy, try again later"
                if dom.lower() != outer.domain or local not in outer.dovecot.users:
                    return f"550 5.1.1 <{address}>: no such user here"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                for rcpt in envelope.rcpt_tos:
                    outer.dovecot.deliver(rcpt.partition("@")[0], envelope.mail_from, envelope.original_content)
                outer.received.append((envelope.mail_from, list(envelope.rcpt_tos)))
                return "250 2.0.0 OK delivered"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = login is not None and (auth_data.login.decode(), auth_data.password.decode()) == login
            return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535

        self.port = free_port()
        self.controller = Controller(
            Handler(), hostname="127.0.0.1", port=self.port, authenticator=authenticator,
            auth_require_tls=False, auth_required=login is not None, decode_data=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "Smtp":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
