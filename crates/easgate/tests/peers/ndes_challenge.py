"""Fetch a one-time SCEP challenge the way MDMs read Microsoft NDES's admin page.

ndes_challenge.py URL USER PASSWORD: GET URL with HTTP Basic, decode the body as UTF-16 (as
Zentral does: a byte-order mark is required; Fleet likewise reads UTF-16 honouring the BOM),
and print what follows "The enrollment challenge password is: <B> " (Fleet's pattern), which must
also satisfy Zentral's stricter `<B> ([A-Z0-9]{16,32}) </B>`. Exit 0 and the challenge on
stdout; exit 4 and "HTTP <status>" for an error answer (with WWW-Authenticate, if any); exit 5
when the page holds no challenge.
"""
import base64
import re
import sys
import urllib.error
import urllib.request

url, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
request = urllib.request.Request(url)
credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
request.add_header("Authorization", f"Basic {credentials}")
try:
    with urllib.request.urlopen(request, timeout=20) as response:
        body = response.read()
except urllib.error.HTTPError as e:
    print(f"HTTP {e.code} {e.headers.get('WWW-Authenticate', '')}".strip())
    sys.exit(4)

page = body.decode("utf-16")
fleet = re.search(r"(?i)The enrollment challenge password is: <B> (?P<password>\S*)", page)
zentral = re.search(r"challenge password is: <B> ([A-Z0-9]{16,32}) </B>", page)
if not fleet or not zentral or fleet.group("password") != zentral.group(1):
    print(page)
    sys.exit(5)
if "used only once and will expire within 60 minutes" not in page:
    print(page)
    sys.exit(5)
print(zentral.group(1))
