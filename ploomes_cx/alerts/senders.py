"""The I/O of an alert: POST to a Slack-compatible webhook, or one e-mail over SMTP (stdlib only).

Neither function lets the webhook URL or the SMTP password out: every failure becomes a
`SendError` whose text is built here from the error's class and a message with the secrets
redacted, and the original exception is not chained (its text may hold the URL).
"""

from __future__ import annotations

import http.client
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage

from ploomes_cx.alerts.config import EmailTarget
from ploomes_cx.alerts.messages import first_line, redact


class SendError(Exception):
    """A target did not take the message; the text names the target, never its URL or password."""


def post_webhook(url: str, text: str, timeout: float) -> None:
    """Slack's incoming-webhook body, `{"text": ...}`; any 2xx is taken (Slack answers `ok`).

    The request is built inside the `try`: a URL without a scheme (ValueError "unknown url type")
    or with a space or a control character (http.client.InvalidURL, which quotes the URL's path,
    Slack's secret part) is a SendError like a refused connection, and says nothing of the URL."""
    try:
        request = urllib.request.Request(
            url,
            data=json.dumps({"text": text}).encode("utf-8"),
            headers={"Content-Type": "application/json", "User-Agent": "ploomes-cx-alerts"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:
        raise SendError(f"webhook answered HTTP {exc.code}") from None
    except (ValueError, http.client.InvalidURL) as exc:  # the URL itself: its text is never shown
        raise SendError(f"the webhook URL is not a usable http(s) URL ({type(exc).__name__})") from None
    except Exception as exc:  # unreachable, timed out, a broken answer: whatever it was, redacted
        reason = getattr(exc, "reason", exc)
        raise SendError(
            f"webhook unreachable: {type(exc).__name__}: {redact(first_line(str(reason)), [url])}"
        ) from None


def send_email(target: EmailTarget, password: str | None, subject: str, text: str) -> None:
    """One message to every `to` address; STARTTLS or implicit TLS as the mapping says, a login
    only when the mapping names a password variable."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = target.sender
    message["To"] = ", ".join(target.to)
    message.set_content(text)
    context = ssl.create_default_context()
    try:
        if target.ssl:
            server: smtplib.SMTP = smtplib.SMTP_SSL(
                target.host, target.port, timeout=target.timeout_seconds, context=context
            )
        else:
            server = smtplib.SMTP(target.host, target.port, timeout=target.timeout_seconds)
        with server:
            if target.starttls:
                server.starttls(context=context)
            if password is not None:
                server.login(target.login, password)
            server.send_message(message)
    except smtplib.SMTPResponseException as exc:
        raise SendError(f"SMTP {target.host}:{target.port} answered {exc.smtp_code}") from None
    except Exception as exc:  # refused, unreachable, TLS, a name or password smtplib cannot encode
        why = redact(first_line(str(exc)), [password or ""])
        raise SendError(f"SMTP {target.host}:{target.port} failed: {type(exc).__name__}: {why}") from None
