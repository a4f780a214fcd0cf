"""The local shell, driven by a script on standard input as a user would."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

from vpsbot.shell import Shell


def run_script(lines: list[str], *, transition_delay: float = 60.0) -> str:
    out = io.StringIO()
    shell = Shell(
        stdin=io.StringIO("\n".join(lines) + "\n"),
        stdout=out,
        interactive=False,
        transition_delay=transition_delay,
    )
    try:
        shell.start()
        assert shell.run() == 0
    finally:
        shell.close()
    return out.getvalue()


def test_list_show_and_a_confirmed_reboot_button():
    output = run_script(["/vps list", "/vps show web-01", "6", "y", "/vps audit"])

    assert "*4 servers*" in output
    for name in ("web-01", "web-02", "db-01", "staging-01"):
        assert name in output
    # The list draws four Show buttons (1-4); the card draws Stop, Reboot, Delete.
    assert "[5] Stop  [6] Reboot  [7] Delete" in output
    assert "Reboot web-01? web-01 restarts gracefully" in output
    assert "[#ops] vpsbot:" in output
    assert "@alice rebooted *web-01*" in output
    assert "@alice reboot *web-01* → *succeeded*" in output


def test_cancelled_confirm_sends_nothing():
    output = run_script(["/vps show web-01", "1", "n", "/vps audit action=stop"])

    assert "Cancelled." in output
    assert "stopped *web-01*" not in output
    assert "(0 shown)" in output


def test_delete_dialog_prompts_for_the_name_and_refuses_a_wrong_one():
    output = run_script(
        [
            "/vps policy delete=allow",
            "/vps delete staging-01",
            "staging-02",
            "staging-01",
            "/vps list",
        ]
    )

    assert "┌─ dialog: Delete server" in output
    assert "Server name: staging-02" in output
    assert "! That is not this server's name. Type staging-01 exactly" in output
    assert "@alice deleted *staging-01*" in output
    assert "*3 servers*" in output


def test_bob_cannot_change_the_policy_and_his_rename_waits_for_approval():
    output = run_script(
        [":as bob", "/vps policy power=deny", "/vps rename web-01 web-09"]
    )

    assert "You are now bob." in output
    assert "Only admins can change the policy. Admins: @alice." in output
    assert "@bob asks for approval to *rename web-01 to web-09*" in output
    assert "[1] Approve  [2] Deny" in output
    assert "[3] Cancel request" in output


def test_bob_approves_alices_rename_and_it_runs():
    output = run_script(
        [
            '/vps rename web-01 web-09 reason="naming"',
            "1",
            ":as bob",
            "/vps approvals",
            "4",
            "/vps audit",
        ]
    )

    assert "@alice asks for approval to *rename web-01 to web-09*" in output
    assert "[only you] You cannot approve your own request" in output
    assert "*1 pending approval request*" in output
    assert "[4] Approve  [5] Deny" in output
    assert (
        "[only you] You approved @alice's request to *rename web-01 to web-09*: "
        "web-01 is now called web-09." in output
    )
    assert ":white_check_mark: Approved by @bob at " in output
    assert "@alice renamed *web-09* (id 12345): web-01 is now called web-09." in output
    assert "@bob rename *web-01* → *approved* — approved U0ALICE's request" in output
    assert "@alice rename *web-01* → *succeeded* — renamed web-01 to web-09" in output


def test_a_create_dialog_becomes_a_request_that_bob_approves():
    output = run_script(
        [
            "/vps create",
            "web-03",
            "2",
            "2",
            "2",
            "",
            "1",
            ":as bob",
            "1",
            "/vps show web-03",
        ]
    )

    assert (
        "@alice asks for approval to *create web-03 (Performance VPS, Debian 12, "
        "us-east, backups on)*" in output
    )
    assert "Sent for approval; the request is in the channel." in output
    assert "@alice ordered *web-03* (id 12349)" in output
    assert "*web-03* (id 12349)" in output.rsplit("/vps show web-03", 1)[1]


def test_malformed_input_gets_one_sentence():
    output = run_script(["/vps frob", "/vps show", "42", "hello"])

    assert "`frob` is not a vpsbot command" in output
    assert "it needs a server id or name" in output
    assert "There is no button 42." in output
    assert "Type a /vps command, a button number, or :help." in output


def test_vpsbot_shell_command_reads_stdin_when_not_a_terminal(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "vpsbot", "shell"],
        input="/vps list\n:quit\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )

    assert result.returncode == 0, result.stderr
    assert "*4 servers*" in result.stdout
    assert "Traceback" not in result.stderr


def test_shell_words_are_forgiving_and_unknown_users_are_named():
    output = run_script(["/VPS list", ":as carol", ":as bob", ":nope"])

    assert "*4 servers*" in output
    assert "There is no user 'carol' here; try alice or bob." in output
    assert "You are now bob." in output
    assert "Unknown shell command.\n" in output


def test_typed_mentions_reach_the_app_as_slack_sends_them():
    output = run_script(["/vps reboot web-01", "/vps audit @Alice", "/vps audit @bob"])

    assert "*Audit log*, newest first (1 shown) — user=@alice" in output
    assert "@alice reboot *web-01* → *succeeded*" in output
    assert "No entries match." in output


def test_create_dialog_asks_each_field_and_redraws_on_a_taken_name():
    output = run_script(
        [
            "/vps policy create=allow",
            "/vps create",
            "db-01",  # taken: the form comes back with the problem under Name
            "3",
            "Debian 12",
            "2",
            "",
            "",
            ":cancel",
        ]
    )

    assert "  1) Standard VPS · 2 vCPU · 4 GB · 80 GB" in output
    assert "Hostname (optional): " in output
    assert "Backups [Off]: " in output
    assert "  ⚠ db-01 is already the name of server 12347" in output
    assert "Name [db-01]: " in output
    assert "Dialog closed; nothing was submitted." in output
    assert "ordered" not in output


def test_edit_dialog_keeps_what_is_left_empty():
    output = run_script(
        [
            "/vps policy modify=allow",
            "/vps update web-02",
            "web-2b",
            "",
            "",
            "/vps show web-2b",
        ]
    )

    assert "Name [web-02]: web-2b" in output
    assert "Hostname [web-02.example.com]: " in output
    assert "@alice edited *web-2b* (id 12346): name web-02 → web-2b." in output
    assert "web-02.example.com" in output.rsplit("/vps show web-2b", 1)[1]


def test_a_reboot_is_followed_and_the_announcement_updated():
    output = run_script(["/vps reboot web-01", ":wait"], transition_delay=0.5)

    announced, _, updated = output.partition("(updated) [#ops] vpsbot:")
    assert "@alice rebooted *web-01*" in announced
    assert "@alice rebooted *web-01*" in updated
    assert "web-01 is `active` after 0:0" in updated


def test_an_inline_error_keeps_what_was_typed():
    output = run_script(
        [
            "/vps policy create=allow",
            "/vps create",
            "-bad-",
            "2",
            "2",
            "2",
            "",
            "1",
            "web-09",
            "",
            "",
            "",
            "",
            "",
        ]
    )

    assert "  ! Use letters, digits and hyphens" in output
    assert "Name [-bad-]: web-09" in output
    assert "Plan [Performance VPS · 4 vCPU · 8 GB · 160 GB]: " in output
    assert "Backups [On]: " in output
    assert "ordered *web-09* (id 12349): Performance VPS, Debian 12, us-east, " in (
        output
    )


def test_an_audit_export_is_uploaded_and_saved(tmp_path):
    out = io.StringIO()
    shell = Shell(
        stdin=io.StringIO(
            "\n".join(["/vps list", "/vps audit", "/vps audit export action=list"])
            + "\n"
        ),
        stdout=out,
        interactive=False,
        transition_delay=60.0,
        export_dir=tmp_path,
    )
    try:
        shell.start()
        assert shell.run() == 0
    finally:
        shell.close()
    output = out.getvalue()

    [saved] = list(tmp_path.iterdir())
    assert re.fullmatch(r"vpsbot-audit-C0SHELL-\d{8}-\d{6}\.csv", saved.name)
    assert f"[#ops] vpsbot uploaded {saved.name} (1 entry), saved as {saved}" in (
        output
    )
    assert "Audit export: 1 entry (action=list), asked for by @alice." in output
    # The /vps audit answer offers the same export as a button.
    assert "Export" in output
    lines = saved.read_text(encoding="utf-8").splitlines()
    assert lines[0] == (
        "at,team,channel,user,action,server_id,server_name,outcome,detail,request_id"
    )
    [row] = lines[1:]
    assert ",T0SHELL,C0SHELL,U0ALICE,list,,,succeeded," in row


def test_bob_approves_alices_request_from_his_home():
    output = run_script(
        [
            '/vps rename web-01 web-09 reason="tidy"',
            ":as bob",
            ":home",
            "4",
            "/vps list",
        ]
    )

    assert "┌─ Home of bob" in output
    assert "*Pending approvals you can decide*" in output
    assert "@alice asks to *rename web-01 to web-09* in #ops" in output
    assert "│ [4] Approve  [5] Deny" in output
    assert "@alice rename *web-01* → *requested* in #ops" in output
    # Approve from the Home: the request message is redrawn, alice is told,
    # the rename is announced, and bob's Home is drawn again.
    assert "Approved by @bob at " in output
    assert (
        "@bob approved your request to *rename web-01 to web-09*: web-01 is now "
        "called web-09." in output
    )
    assert "@alice renamed *web-09* (id 12345)" in output
    assert output.count("┌─ Home of bob") == 2
    assert (
        "│ You approved @alice's request to *rename web-01 to web-09*: web-01 is "
        "now called web-09." in output
    )
    assert "│   (No pending approvals you can decide.)" in output
    assert "*web-09* `active`" in output


def _export_twice(export_dir) -> str:
    out = io.StringIO()
    shell = Shell(
        stdin=io.StringIO("/vps list\n/vps audit export\n/vps audit export\n"),
        stdout=out,
        interactive=False,
        transition_delay=60.0,
        export_dir=export_dir,
    )
    try:
        shell.start()
        assert shell.run() == 0
    finally:
        shell.close()
    return out.getvalue()


def test_two_exports_in_one_second_are_both_kept(tmp_path, monkeypatch):
    # Both exports get the same name when made within one second.
    monkeypatch.setattr(
        "vpsbot.ops.auditing.export_filename",
        lambda channel, moment: f"vpsbot-audit-{channel}-20260301-100509.csv",
    )

    output = _export_twice(tmp_path)

    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "vpsbot-audit-C0SHELL-20260301-100509-2.csv",
        "vpsbot-audit-C0SHELL-20260301-100509.csv",
    ]
    assert f"saved as {tmp_path / 'vpsbot-audit-C0SHELL-20260301-100509-2.csv'}" in (
        output
    )


def test_an_export_that_cannot_be_saved_is_said_and_the_shell_goes_on(tmp_path):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")

    output = _export_twice(blocked / "exports")

    assert output.count("could not be saved in") == 2
    assert "*4 servers*" in output
