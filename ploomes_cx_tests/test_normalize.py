"""Normalizers: property tests (any input gives a value or a reason, never an exception) and
agreement with the libraries that are the reference for each rule."""

from __future__ import annotations

import pandas as pd
import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.br import cnpj as std_cnpj
from stdnum.br import cpf as std_cpf

from ploomes_cx.sandbox.brazil import cnpj_digits, cpf_digits, format_cnpj, format_cpf
from ploomes_cx.staging.normalize import (
    company_key,
    normalize_codes,
    normalize_documents,
    normalize_emails,
    normalize_names,
    normalize_phones,
)

ANY_TEXT = st.one_of(st.none(), st.text(max_size=40), st.floats(allow_nan=True), st.integers())
DOC_LIKE = st.one_of(
    st.text(alphabet="0123456789.-/ ", max_size=20),
    st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=11, max_size=14),
    st.from_regex(r"[0-9]{11}|[0-9]{14}", fullmatch=True),
)


def one(fn, value):
    return fn(pd.Series([value], dtype=object)).iloc[0]


def _present(v) -> bool:
    return v is not None and not (isinstance(v, float) and v != v)


@settings(max_examples=300, deadline=None)
@given(st.one_of(ANY_TEXT, DOC_LIKE))
def test_documents_give_a_valid_value_or_a_reason(value):
    row = one(normalize_documents, value)
    if _present(row.document):
        assert not _present(row.document_reason)
        checker = std_cpf if row.document_type == "cpf" else std_cnpj
        assert checker.is_valid(row.document)
        assert len(row.document) == (11 if row.document_type == "cpf" else 14)
    else:
        text = "" if value is None or isinstance(value, float) else str(value)
        assert _present(row.document_reason) or text.strip(" .-/\t\n\r\x0b\x0c") == "" or text.strip() == ""


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[0-9]{11}|[0-9]{14}", fullmatch=True))
def test_documents_agree_with_python_stdnum(digits):
    row = one(normalize_documents, digits)
    reference = (std_cpf if len(digits) == 11 else std_cnpj).is_valid(digits)
    repeated = len(set(digits)) == 1
    assert _present(row.document) == (reference and not repeated)


def test_formatted_and_bare_documents_normalize_to_the_same_value():
    cnpj = cnpj_digits("112223330001")
    cpf = cpf_digits("123456789")
    frame = normalize_documents(pd.Series([format_cnpj(cnpj), cnpj, f" {format_cpf(cpf)} ", cpf]))
    assert frame.document.tolist() == [cnpj, cnpj, cpf, cpf]
    assert frame.document_type.tolist() == ["cnpj", "cnpj", "cpf", "cpf"]


def test_bad_documents_keep_a_reason():
    frame = normalize_documents(pd.Series(["11.222.333/0001-82", "111.111.111-11", "123", "12#45", ""]))
    assert frame.document.isna().all()
    assert frame.document_reason.tolist()[:4] == [
        "document_check_digits",
        "document_repeated_digits",
        "document_length",
        "document_characters",
    ]
    assert not _present(frame.document_reason.iloc[4])  # missing is not an error


def test_alphanumeric_cnpj_is_accepted():
    assert std_cnpj.is_valid("12ABC34501DE35")
    row = one(normalize_documents, "12.ABC.345/01DE-35")
    assert (row.document, row.document_type) == ("12ABC34501DE35", "cnpj")


@settings(max_examples=300, deadline=None)
@given(st.one_of(ANY_TEXT, st.emails(), st.emails().map(str.upper)))
def test_emails_give_a_valid_value_or_a_reason(value):
    row = one(normalize_emails, value)
    if _present(row.email):
        assert row.email == row.email.strip().lower() and "@" in row.email
        assert not _present(row.email_reason)
    else:
        text = "" if value is None or isinstance(value, float) else str(value)
        assert _present(row.email_reason) or text.strip() == ""


def test_email_case_and_spaces_merge():
    frame = normalize_emails(
        pd.Series([" Maria.Silva@UOL.com.br", "maria.silva@uol.com.br", "maria@", "a@b.c"])
    )
    assert frame.email.tolist()[:2] == ["maria.silva@uol.com.br"] * 2
    assert frame.email_reason.tolist()[2:] == ["email_syntax", "email_syntax"]


BR_NUMBERS = st.builds(
    lambda ddd, head, rest, style: style.format(ddd=ddd, n=f"{head}{rest}"),
    st.integers(10, 99),
    st.sampled_from(["2", "3", "4", "5", "6", "7", "8", "9", "91", "96", "97", "98", "99", "90"]),
    st.from_regex(r"[0-9]{6,8}", fullmatch=True),
    st.sampled_from(["({ddd}) {n}", "{ddd}{n}", "+55 {ddd} {n}", "0{ddd}{n}", "55{ddd}{n}"]),
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(ANY_TEXT, BR_NUMBERS))
def test_phones_give_e164_or_a_reason_and_agree_with_phonenumbers(value):
    row = one(normalize_phones, value)
    if _present(row.phone):
        assert row.phone.startswith("+") and row.phone[1:].isdigit()
        parsed = phonenumbers.parse(row.phone)
        assert phonenumbers.is_valid_number(parsed), (value, row.phone)
        assert not _present(row.phone_reason)
    else:
        text = "" if value is None or isinstance(value, float) else str(value)
        assert _present(row.phone_reason) or text.strip() == ""


def test_brazilian_phone_shapes():
    frame = normalize_phones(pd.Series(["(11) 98765-4321", "11 3842-6671", "+1 650 253 0000", "12", ""]))
    assert frame.phone.tolist()[:3] == ["+5511987654321", "+551138426671", "+16502530000"]
    assert frame.phone_reason.tolist()[3] == "phone_invalid"


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
def test_names_give_a_value_or_a_reason(value):
    row = one(normalize_names, value)
    if _present(row.name_key):
        assert row.name_key == row.name_key.lower() and row.name_key.isascii() and "  " not in row.name_key
        assert row["name"] == " ".join(row["name"].split())
    else:
        assert _present(row.name_reason)


def test_names_keep_accents_for_display_and_fold_them_for_matching():
    frame = normalize_names(pd.Series(["  Padaria  São João LTDA ", "PADARIA SAO JOAO Ltda."]))
    assert frame.name.tolist()[0] == "Padaria São João LTDA"
    assert frame.name_key.tolist() == ["padaria sao joao ltda"] * 2
    assert company_key("padaria sao joao ltda") == company_key("padaria sao joao s a") == "padaria sao joao"


@pytest.mark.parametrize(("raw", "code"), [(" ERP-1 ", "ERP-1"), ("", None), (None, None), ("  ", None)])
def test_external_codes_are_trimmed(raw, code):
    assert one(normalize_codes, raw).external_code == code


def test_values_that_differ_after_a_nul_are_cleaned_apart() -> None:
    # pandas' factorize took 'Ana\x00Maria' for 'Ana': one value got the other's result
    names = normalize_names(pd.Series(["Ana\x00Maria", "Ana", None, "\x00"], dtype=object))
    assert names["name"].tolist() == ["Ana\x00Maria", "Ana", None, "\x00"]
    emails = normalize_emails(pd.Series(["a@x.com\x00b", "a@x.com"], dtype=object))
    assert emails["email"].tolist() == [None, "a@x.com"]
