"""Reviewer accounts: the password floor and common-password list (zxcvbn), and `--languages`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pressflow.drafts import reviewers
from pressflow.cli import app


@pytest.mark.parametrize("password", ["password", "12345678", "aaaaaaaa", "alice", "alicealice", " " * 8,
                                      "Password1", "qwertyuiop", "short"])
def test_weak_passwords_are_refused(settings, password):
    with pytest.raises(reviewers.AccountError, match="password"):
        reviewers.add_user(settings.db_url, "alice", password, [])
    assert reviewers.list_users(settings.db_url) == []


def test_a_passphrase_is_taken(settings):
    assert reviewers.add_user(settings.db_url, "alice", "correct horse battery", []) is True


def cli(settings, *args, password="correct horse battery"):
    result = CliRunner().invoke(app, [*args, "--out", str(settings.out_dir)], env={"PRESSFLOW_NEW_PASSWORD": password})
    return result.exit_code, result.output


@pytest.mark.parametrize("value", [" , ", ",", " "])
def test_languages_that_name_no_language_are_refused_not_read_as_all(settings, value):
    code, output = cli(settings, "users", "add", "lin", "--languages", value)
    assert code == 1 and "names no language" in output, output
    assert reviewers.list_users(settings.db_url) == []


def test_languages_are_checked_and_kept(settings):
    code, output = cli(settings, "users", "add", "lin", "--languages", "zh, es,")
    assert code == 0, output
    assert reviewers.list_users(settings.db_url) == [("lin", ["zh", "es"])]
    code, output = cli(settings, "users", "add", "ana", "--languages", "klingon")
    assert code == 1 and "'klingon' is not a known language tag" in output, output


def test_a_weak_password_through_the_cli_is_one_line(settings):
    code, output = cli(settings, "users", "add", "lin", password="password")
    assert code == 1 and output.count("\n") == 1 and "too easy to guess" in output, output
