"""An EAS client driver over pyactivesync, for the integration tests (see SOGO.md).

    eas_client.py --host HOST:PORT --user U --password P --device-id ID --ca CA.pem
                  [--cert CERT.pem --key KEY.pem] [--path-prefix /PREFIX] [--device-type T]
                  [--header 'Name: value' ...] [--timeout S] [--stop-on-failure]
                  STEP...

Steps (run in order, each on the same client and TLS session):
  options           HTTP OPTIONS (MS-ASProtocolVersions / MS-ASProtocolCommands)
  provision         Provision; a server without an EAS policy (no PolicyKey) counts as success.
                    Other commands provision first unless provisioned (or --no-auto-provision).
  foldersync        FolderSync with SyncKey 0; remembers the Contacts folder
  folders           FolderSync with SyncKey 0: the folder count and names (no Contacts needed)
  inbox-sync        Sync the Inbox: SyncKey 0, then the new key; the subjects of added items
  contacts-sync     Sync the Contacts folder: SyncKey 0, then a second Sync with the new key
  contacts-add      add one contact through Sync Add, then Sync again (expects it to stay)
  ping[:HEARTBEAT]  Ping the Contacts folder (default heartbeat 5 s); client timeout heartbeat+30
  sleep:SECONDS     wait (e.g. to let a gateway's state expire)
  policy            MS-ASPROV by hand: download the policy, acknowledge its temporary key, keep
                    the final key. Detail (JSON): both keys, the Policy Status of each phase and
                    the download's raw WBXML (base64), for the test to decode field by field
  set-key:KEY       send X-MS-PolicyKey KEY from now on ("none": send none)
  wipe[:ack]        Provision: expects a wipe order (RemoteWipe or AccountOnlyRemoteWipe); with
                    :ack acknowledges it (Status 1). Detail (JSON): the order, the raw answer
                    (base64) and the acknowledgement's Provision Status
  provision-body:B64  POST a Provision whose body is the base64 given; detail: the raw answer

--protocol VERSION sends that MS-ASProtocolVersion (pyactivesync speaks 16.1).

The URL is https://HOST[PREFIX]/Microsoft-Server-ActiveSync. Prints exactly one JSON document:
  {"ok": bool, "user": .., "device_id": .., "elapsed": s,
   "steps": [{"step", "ok", "http_status", "eas_status", "detail", "elapsed"}, ...]}
and exits 0 only if every step succeeded. An HTTP error (401/403/449/5xx), a TLS error or a reset
connection fails that step only; the remaining steps still run unless --stop-on-failure.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid

import base64

import requests
import pyactivesync._http as eas_http
from pyactivesync import Client
from pyactivesync._codepages import CODEPAGES, PAGE_INDEX, REVERSE
from pyactivesync._wbxml import WBXMLReader, WBXMLWriter, find, text_of, wtag
from pyactivesync.exceptions import EASError, ProvisionError, StatusError
from pyactivesync.models import Contact, FolderType

# pyactivesync 0.17 predates EAS 16.1's AccountOnlyRemoteWipe (Provision code page, token 0x3B
# in MS-ASWBXML): add it so the client can read and acknowledge an account-only wipe.
CODEPAGES["Provision"]["AccountOnlyRemoteWipe"] = 0x3B
REVERSE[PAGE_INDEX["Provision"]][0x3B] = "AccountOnlyRemoteWipe"
POLICY_TYPE = "MS-EAS-Provisioning-WBXML"


class Driver:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.client = Client(
            args.host,
            args.user,
            args.password,
            device_id=args.device_id,
            device_type=args.device_type,
            timeout=args.timeout,
        )
        transport = self.client._transport
        if args.path_prefix:
            transport.base_url = f"https://{args.host}{args.path_prefix.rstrip('/')}/Microsoft-Server-ActiveSync"
        s = transport.session
        s.trust_env = False  # else REQUESTS_CA_BUNDLE etc. override verify
        s.verify = args.ca
        if args.cert:
            s.cert = (args.cert, args.key) if args.key else args.cert
        for h in args.header:
            name, _, value = h.partition(":")
            s.headers[name.strip()] = value.strip()
        self.statuses: list[int] = []
        s.hooks["response"].append(self._record)
        self.contacts_id: str | None = None
        self.contacts_key: str | None = None
        # pyactivesync provisions before any other command; a server without an EAS policy makes
        # that raise, so tolerate it (or skip provisioning altogether with --no-auto-provision).
        if args.no_auto_provision:
            self.client._provisioned = True
        self.client._ensure_provisioned = self._ensure_provisioned

    def _ensure_provisioned(self) -> None:
        if not self.client._provisioned:
            self.step_provision(None)

    def _record(self, resp: requests.Response, *args, **kwargs) -> None:
        self.statuses.append(resp.status_code)

    # -- steps ---------------------------------------------------------------------------

    def step_options(self, arg: str | None) -> tuple[int | None, str]:
        t = self.client._transport
        resp = t.session.options(t.base_url, timeout=self.args.timeout)
        resp.raise_for_status()
        versions = resp.headers.get("MS-ASProtocolVersions", "")
        if not versions:
            raise EASError("OPTIONS: no MS-ASProtocolVersions header")
        return None, f"versions {versions}; commands {resp.headers.get('MS-ASProtocolCommands', '')}"

    def step_provision(self, arg: str | None) -> tuple[int | None, str]:
        try:
            key = self.client.provision()
            return 1, f"PolicyKey {key}"
        except ProvisionError as e:
            # HTTP 200 but no policy: carry on unprovisioned (PEERS.md).
            self.client._provisioned = True
            return None, f"no EAS policy ({e}); continuing without PolicyKey"

    def _ensure_contacts(self) -> str:
        if self.contacts_id is None:
            self.step_foldersync(None)
        assert self.contacts_id is not None
        return self.contacts_id

    def step_foldersync(self, arg: str | None) -> tuple[int | None, str]:
        folders = self.client.list_folders()
        contacts = [f for f in folders if f.type == FolderType.CONTACTS] or [
            f for f in folders if f.type == FolderType.USER_CONTACTS
        ]
        if not contacts:
            raise EASError(f"FolderSync: no Contacts folder among {len(folders)} folders")
        self.contacts_id = contacts[0].id
        types = ",".join(sorted({f.type.name.lower() for f in folders}))
        return 1, f"{len(folders)} folders ({types}); contacts {self.contacts_id}"

    def step_folders(self, arg: str | None) -> tuple[int | None, str]:
        """FolderSync without needing a Contacts folder: the count, and the names in order."""
        folders = self.client.list_folders()
        self.inbox_id = next((f.id for f in folders if f.type == FolderType.INBOX), None)
        return 1, f"{len(folders)} folders: " + ", ".join(f.name for f in folders)

    def step_inbox_sync(self, arg: str | None) -> tuple[int | None, str]:
        """Sync the Inbox (SyncKey 0, then the new key) and list the subjects of added items."""
        if getattr(self, "inbox_id", None) is None:
            self.step_folders(None)
        if self.inbox_id is None:
            raise EASError("no Inbox among the folders")
        first = self.client.sync_folder(self.inbox_id, "0")
        second = self.client.sync_folder(self.inbox_id, first.sync_key)
        subjects = []
        for item in second.added:
            subject = item.fields.get("Email.Subject") or item.fields.get("Subject")
            subjects.append(subject if subject is not None else item.server_id)
        return 1, f"{len(second.added)} added: " + " | ".join(subjects)

    def step_contacts_sync(self, arg: str | None) -> tuple[int | None, str]:
        fid = self._ensure_contacts()
        first = self.client.sync_folder(fid, "0")
        second = self.client.sync_folder(fid, first.sync_key)
        self.contacts_key = second.sync_key
        return 1, (
            f"SyncKey 0 -> {first.sync_key} -> {second.sync_key}; {len(second.added)} added, "
            f"{len(second.changed)} changed, {len(second.deleted)} deleted"
        )

    def step_contacts_add(self, arg: str | None) -> tuple[int | None, str]:
        fid = self._ensure_contacts()
        if self.contacts_key is None:
            self.step_contacts_sync(None)
        tag = uuid.uuid4().hex[:8]
        contact = Contact(first_name="Test", last_name=f"Contact-{tag}", email1_address=f"test-{tag}@example.org")
        result = self.client.create_contact(fid, self.contacts_key, contact)
        if result.status != "1":
            return int(result.status), f"Sync Add item status {result.status}"
        # Read back from a fresh sync: the new contact must be there.
        first = self.client.sync_folder(fid, "0")
        again = self.client.sync_folder(fid, first.sync_key)
        found = [i for i in again.added if any(tag in str(v) for v in i.fields.values())]
        self.contacts_key = again.sync_key
        if not found:
            raise EASError(f"added contact {result.server_id} not returned by a fresh Sync")
        return 1, f"added {result.server_id}; a fresh Sync returns {len(again.added)} contacts"

    def step_ping(self, arg: str | None) -> tuple[int | None, str]:
        heartbeat = int(arg) if arg else 5
        fid = self._ensure_contacts()
        t0 = time.monotonic()
        result = self.client.ping(fid, folder_class="Contacts", heartbeat=heartbeat, timeout=heartbeat + 30)
        took = time.monotonic() - t0
        status = int(result.status) if result.status else None
        detail = f"heartbeat {heartbeat} s: Status {result.status} after {took:.1f} s"
        if result.changed_folder_ids:
            detail += f"; changed {result.changed_folder_ids}"
        if status not in (1, 2):
            raise StatusError("Ping", result.status or "none")
        return status, detail

    def _provision(self, children: list, policy_key: str | None = None) -> bytes:
        w = WBXMLWriter()
        w.tag("Provision", "Provision", children=children)
        extra = {"PolicyKey": policy_key} if policy_key else None
        return self.client._post("Provision", w.render(), extra_params=extra)

    @staticmethod
    def _policy(key: str | None) -> list:
        children = [wtag("Provision", "PolicyType", text=POLICY_TYPE)]
        if key is not None:
            children += [wtag("Provision", "PolicyKey", text=key), wtag("Provision", "Status", text="1")]
        return [wtag("Provision", "Policies", children=[wtag("Provision", "Policy", children=children)])]

    @staticmethod
    def _policy_status(nodes: list) -> str | None:
        policy = find(nodes, "Provision.Policy")
        return text_of(find(policy[2], "Provision.Status")) if policy else None

    def step_policy(self, arg: str | None) -> tuple[int | None, str]:
        first = self._provision(self._policy(None))
        nodes = WBXMLReader(first).parse()
        status = text_of(find(nodes, "Provision.Status"))
        policy_status = self._policy_status(nodes)
        temporary = text_of(find(nodes, "Provision.PolicyKey"))
        out = {"download": base64.b64encode(first).decode(), "download_status": policy_status,
               "temporary_key": temporary}
        if status != "1" or policy_status != "1" or not temporary:
            raise ProvisionError(f"policy download: Provision Status {status}, Policy Status {policy_status}: {json.dumps(out)}")
        second = self._provision(self._policy(temporary), policy_key=temporary)
        nodes2 = WBXMLReader(second).parse()
        out["ack_status"] = self._policy_status(nodes2)
        out["key"] = text_of(find(nodes2, "Provision.PolicyKey"))
        if out["ack_status"] == "1" and out["key"]:
            self.client._transport.policy_key = out["key"]
            self.client._provisioned = True
        return int(out["ack_status"] or 0), json.dumps(out)

    def step_set_key(self, arg: str | None) -> tuple[int | None, str]:
        self.client._transport.policy_key = None if arg in (None, "none") else arg
        self.client._provisioned = True
        return None, f"X-MS-PolicyKey {arg}"

    def step_wipe(self, arg: str | None) -> tuple[int | None, str]:
        answer = self._provision(self._policy(None))
        nodes = WBXMLReader(answer).parse()
        order = next((o for o in ("RemoteWipe", "AccountOnlyRemoteWipe") if find(nodes, f"Provision.{o}")), None)
        out = {"order": order, "answer": base64.b64encode(answer).decode(),
               "status": text_of(find(nodes, "Provision.Status"))}
        if order is None:
            raise ProvisionError(f"no wipe order in the Provision answer: {json.dumps(out)}")
        if arg == "ack":
            ack = self._provision([wtag("Provision", order, children=[wtag("Provision", "Status", text="1")])])
            out["ack_answer"] = base64.b64encode(ack).decode()
            out["ack_status"] = text_of(find(WBXMLReader(ack).parse(), "Provision.Status"))
        return 1, json.dumps(out)

    def step_provision_body(self, arg: str | None) -> tuple[int | None, str]:
        t = self.client._transport
        resp = t.session.post(t.base_url, params={"Cmd": "Provision", "User": self.client.user,
                                                  "DeviceId": t.device_id, "DeviceType": t.device_type},
                              data=base64.b64decode(arg or ""),
                              headers={"Content-Type": "application/vnd.ms-sync.wbxml",
                                       "MS-ASProtocolVersion": eas_http._EAS_PROTOCOL_VERSION},
                              timeout=self.args.timeout)
        resp.raise_for_status()
        return None, base64.b64encode(resp.content).decode()

    def step_sleep(self, arg: str | None) -> tuple[int | None, str]:
        time.sleep(float(arg or 1))
        return None, f"slept {arg} s"

    # -- runner --------------------------------------------------------------------------

    def run(self, step: str) -> dict:
        name, _, arg = step.partition(":")
        fn = getattr(self, "step_" + name.replace("-", "_"), None)
        out = {"step": step, "ok": False, "http_status": None, "eas_status": None, "detail": "", "elapsed": 0.0}
        if fn is None:
            out["detail"] = f"unknown step {name!r}"
            return out
        self.statuses = []
        t0 = time.monotonic()
        try:
            eas_status, detail = fn(arg or None)
            out.update(ok=True, eas_status=eas_status, detail=detail)
        except requests.HTTPError as e:
            resp = e.response
            body = (resp.text or "")[:200] if resp is not None else ""
            out["detail"] = f"HTTP {resp.status_code if resp is not None else '?'} {resp.reason if resp is not None else ''}: {body}".strip()
        except requests.exceptions.SSLError as e:
            out["detail"] = f"TLS error: {e}"
        except requests.ConnectionError as e:
            out["detail"] = f"connection error: {e}"
        except requests.Timeout as e:
            out["detail"] = f"timeout: {e}"
        except requests.RequestException as e:  # e.g. a connection reset in the middle of a body
            out["detail"] = f"request error: {type(e).__name__}: {e}"
        except StatusError as e:
            out["eas_status"] = int(e.code) if str(e.code).isdigit() else None
            out["detail"] = f"EAS status error: {e}"
        except (EASError, ValueError, AssertionError) as e:
            out["detail"] = f"{type(e).__name__}: {e}"
        except Exception as e:  # noqa: BLE001 - a driver must report, never crash
            out["detail"] = f"unexpected {type(e).__name__}: {e}"
        out["http_status"] = self.statuses[-1] if self.statuses else None
        out["elapsed"] = round(time.monotonic() - t0, 3)
        return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", required=True, help="HOST:PORT")
    p.add_argument("--user", required=True)
    p.add_argument("--password", default="")
    p.add_argument("--device-id", required=True)
    p.add_argument("--device-type", default="pyactivesync")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--ca", required=True, help="CA bundle that verifies the server")
    p.add_argument("--path-prefix", default="", help="inserted before /Microsoft-Server-ActiveSync")
    p.add_argument("--header", action="append", default=[], help="extra request header 'Name: value'")
    p.add_argument("--timeout", type=float, default=30.0, help="per-request timeout (Ping: heartbeat+30)")
    p.add_argument("--stop-on-failure", action="store_true")
    p.add_argument("--no-auto-provision", action="store_true",
                   help="send commands without a Provision first (no X-MS-PolicyKey) unless a provision step runs")
    p.add_argument("--protocol", default="16.1", help="MS-ASProtocolVersion to send (14.1, 16.1, ...)")
    p.add_argument("steps", nargs="+")
    args = p.parse_args()
    eas_http._EAS_PROTOCOL_VERSION = args.protocol

    t0 = time.monotonic()
    results = []
    try:
        driver = Driver(args)
    except Exception as e:  # noqa: BLE001
        results.append({"step": "setup", "ok": False, "http_status": None, "eas_status": None,
                        "detail": f"{type(e).__name__}: {e}", "elapsed": 0.0})
        driver = None
    if driver is not None:
        for step in args.steps:
            r = driver.run(step)
            results.append(r)
            if not r["ok"] and args.stop_on_failure:
                break
        driver.client.close()
    ok = bool(results) and all(r["ok"] for r in results) and len(results) == len(args.steps)
    print(json.dumps({"ok": ok, "user": args.user, "device_id": args.device_id,
                      "elapsed": round(time.monotonic() - t0, 3), "steps": results}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
