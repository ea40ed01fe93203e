"""Rendering of sandbox records: each one drawn, field by field, from a per-record seeded RNG, so
any record is the same whenever it is asked for, with the dirt real CRMs have."""

from __future__ import annotations

import random
from typing import Any

from ploomes_cx.sandbox.brazil import (
    COMPANY_HEADS,
    COMPANY_SUFFIXES,
    COMPANY_TAILS,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
    PLACES,
    PRODUCTS,
    SEGMENTS,
    cnpj_digits,
    cpf_digits,
    format_cnpj,
    format_cpf,
    slug,
    spoil,
)
from ploomes_cx.sandbox.clock import ENTITY_CODES, ms_to_local_text
from ploomes_cx.sandbox.ploomes_fields import CHANNELS, USERS, field_key, option_id, other_property


class Renderer:
    """Mixed into the dataset: needs `seed`, `tables`, `overrides`, `all_slots` and `twin_of`."""

    seed: int
    tables: dict[str, Any]
    overrides: dict[tuple[str, int], dict[str, Any]]
    all_slots: bool

    def twin_of(self, contact_id: int) -> int | None:
        raise NotImplementedError

    def _rng(self, entity: str, record_id: int) -> random.Random:
        return random.Random((self.seed << 40) ^ (ENTITY_CODES[entity] << 36) ^ record_id)

    def render(self, entity: str, i: int, with_offset: bool = True) -> dict[str, Any]:
        table = self.tables[entity]
        cols = {k: int(v[i]) for k, v in table.cols.items()}
        record = getattr(self, f"_render_{entity}")(cols, with_offset)
        record.update(self.overrides.get((entity, cols["Id"]), {}))
        return record

    def _date(self, ms: int, with_offset: bool) -> str | None:
        return ms_to_local_text(ms, with_offset) if ms else None

    def _stamps(self, cols: dict[str, int], with_offset: bool) -> dict[str, Any]:
        out = {"CreateDate": self._date(cols["CreateDate"], with_offset)}
        if "LastUpdateDate" in cols:
            out["LastUpdateDate"] = self._date(cols["LastUpdateDate"], with_offset)
        return out

    def _company_base(self, org_id: int) -> tuple[str, str, str | None]:
        r = self._rng("contacts", org_id)
        family = f" {r.choice(LAST_NAMES)}" if r.random() < 0.6 else ""
        place = f" {r.choice(PLACES)}" if r.random() < 0.8 else ""
        name = (
            f"{r.choice(COMPANY_HEADS)} {r.choice(COMPANY_TAILS)}{family}{place} {r.choice(COMPANY_SUFFIXES)}"
        )
        cnpj = cnpj_digits(f"{r.randrange(10**7, 10**8)}0001")
        key = f"ERP-{org_id:07d}" if r.random() < 0.7 else None
        return name, cnpj, key

    def _person_base(self, person_id: int) -> tuple[str, str, str, str | None, str]:
        r = self._rng("contacts", person_id)
        first, last = r.choice(FIRST_NAMES), r.choice(LAST_NAMES)
        name = f"{first} {r.choice(LAST_NAMES)} {last}"
        cpf = cpf_digits(f"{r.randrange(10**8, 10**9)}")
        key = f"CLI-{person_id:08d}" if r.random() < 0.3 else None
        return name, cpf, key, f"{slug(first)}.{slug(last)}{person_id}", r.choice(EMAIL_DOMAINS)

    def _render_contacts(self, cols: dict[str, int], with_offset: bool) -> dict[str, Any]:
        cid = cols["Id"]
        r = self._rng("contacts", cid)
        is_org = cols["TypeId"] == 1
        name, register, key, contact_name, email_user, domain = self._contact_identity(r, cid, is_org)
        name, email, phones = self._email_and_phones(r, cid, is_org, name, email_user, domain)
        other = self._contact_properties(r, cid)
        return {
            "Id": cid,
            "TypeId": cols["TypeId"],
            "Name": name,
            "LegalName": name if is_org else None,
            "Register": register,
            "CNPJ": register if is_org else None,
            "CPF": None if is_org else register,
            "Email": email,
            "CompanyId": cols["CompanyId"] or None,
            "Key": key,
            "ContactName": contact_name,
            "OwnerId": 100 + cid % 7,
            "StatusId": 1,
            "ZipCode": r.choice(
                [r.randrange(10_000_000, 99_999_999), f"{r.randrange(10000, 99999)}-{r.randrange(100, 999)}"]
            ),
            "CityId": r.randrange(1, 5000),
            "StateId": r.randrange(1, 28),
            "CountryId": 76,
            **self._stamps(cols, with_offset),
            "Phones": phones,
            "OtherProperties": other,
        }

    def _contact_identity(
        self, r: random.Random, cid: int, is_org: bool
    ) -> tuple[str, str, str | None, str | None, str, str]:
        """Name, document as typed, key, contact name, e-mail user and domain; a twin re-enters
        an earlier record's identity with the small differences people make."""
        twin = self.twin_of(cid)
        base_id = twin or cid
        if is_org:
            name, cnpj, key = self._company_base(base_id)
            domain = f"{slug(name.split()[1])}{base_id}.com.br"
            if twin:  # the same company entered again, with the usual small differences
                name = r.choice(
                    [
                        name.upper(),
                        name.replace(" ", "  ", 1),
                        name.rstrip(".") + " ",
                        name.replace("ã", "a").replace("ç", "c").replace("é", "e"),
                    ]
                )
                key = key if r.random() < 0.5 else None
            roll = r.random()
            if twin:  # a twin always carries the document, written the other way half the time
                register = format_cnpj(cnpj) if roll < 0.5 else cnpj
            else:
                register = (
                    format_cnpj(cnpj)
                    if roll < 0.55
                    else cnpj
                    if roll < 0.85
                    else spoil(cnpj)
                    if roll < 0.92
                    else ""
                )
            contact_name = f"{r.choice(FIRST_NAMES)} {r.choice(LAST_NAMES)}"
            email_user = "contato"
        else:
            name, cpf, key, email_user, domain = self._person_base(base_id)
            roll = r.random()
            if twin:  # the same person again: name typed differently, CPF written the other way or left out
                name = r.choice(
                    [name.upper(), name.replace("á", "a").replace("ô", "o").replace("í", "i"), f" {name}"]
                )
                register = format_cpf(cpf) if roll < 0.4 else cpf if roll < 0.8 else ""
            else:
                register = (
                    format_cpf(cpf)
                    if roll < 0.5
                    else cpf
                    if roll < 0.8
                    else spoil(cpf)
                    if roll < 0.88
                    else ""
                )
            contact_name = None
        return name, register, key, contact_name, email_user, domain

    def _email_and_phones(
        self, r: random.Random, cid: int, is_org: bool, name: str, email_user: str, domain: str
    ) -> tuple[str, str | None, list[dict[str, Any]]]:
        """The name (rarely missing), the e-mail as typed (upper-case, broken, missing, or an
        accountant's shared one) and the phone list."""
        roll = r.random()
        email: str | None = f"{email_user}@{domain}"
        if roll < 0.10:
            email = email.upper()
        elif roll < 0.13:
            email = r.choice([f"{email_user}@", f"{email_user} at {domain}", f" {email_user}@@{domain}"])
        elif roll < 0.18:
            email = None
        if r.random() < 0.01:
            name = ""  # missing name
        ddd = r.choice([11, 21, 31, 41, 47, 51, 61, 71, 81, 85])
        number = f"({ddd}) 9{r.randrange(1000, 9999)}-{r.randrange(1000, 9999)}"
        phones = [
            {
                "Id": cid * 10 + 1,
                "ContactId": cid,
                "PhoneNumber": number,
                "SearchPhoneNumber": int("55" + "".join(c for c in number if c.isdigit())),
                "TypeId": 2,
                "CountryId": 76,
            }
        ]
        if is_org and not self.twin_of(cid) and (cid - 1000) % 37 == 5:
            # an accountant's office keeps the books of several companies: one e-mail, many CNPJs
            email = f"contabilidade@escritorio{((cid - 1000) // 37) % 4}.com.br"
        return name, email, phones

    def _contact_properties(self, r: random.Random, cid: int) -> list[dict[str, Any]]:
        slots = self.all_slots
        segment = cid % len(SEGMENTS)
        other = [
            other_property(
                field_key("contact", 0x0A),
                {"ObjectValueId": option_id(1, segment), "ObjectValueName": SEGMENTS[segment]},
                slots,
            ),
            other_property(field_key("contact", 0x0B), {"IntegerValue": r.randrange(1, 5000)}, slots),
            other_property(field_key("contact", 0x0D), {"StringValue": f"ERP{cid:06d}"}, slots),
        ]
        if r.random() < 0.7:
            year = r.randrange(1970, 2024)
            offset = "-03:00" if r.random() < 0.5 else ""  # dates come with and without an offset (§5)
            founded = f"{year}-0{r.randrange(1, 10)}-1{r.randrange(0, 10)}T00:00:00{offset}"
            other.append(other_property(field_key("contact", 0x0C), {"DateTimeValue": founded}, slots))
        user = 100 + cid % len(USERS)
        notes = r.choice(
            [None, "Cliente desde a feira de 2019.", "Prefere contato por e-mail.\nNão ligar às sextas."]
        )
        other += [
            other_property(field_key("contact", 0x11), {"BigStringValue": notes}, slots),
            other_property(
                field_key("contact", 0x12),
                {"DecimalValue": round(r.uniform(10_000, 9_000_000), 2) if r.random() < 0.8 else None},
                slots,
            ),
            other_property(field_key("contact", 0x13), {"BoolValue": r.random() < 0.7}, slots),
            other_property(
                field_key("contact", 0x14), {"UserValueId": user, "UserValueName": USERS[user]}, slots
            ),
        ]
        return other

    def _render_deals(self, cols: dict[str, int], with_offset: bool) -> dict[str, Any]:
        did = cols["Id"]
        r = self._rng("deals", did)
        product = r.choice(PRODUCTS)
        return {
            "Id": did,
            "Title": f"{product[1]} - negócio {did}",
            "ContactId": cols["ContactId"],
            "PersonId": cols["PersonId"] or None,
            "PipelineId": 1,
            "StageId": r.randrange(1, 6),
            "StatusId": cols["StatusId"],
            "Amount": round(r.uniform(500, 50_000), 2),
            "CurrencyId": 1,
            "OwnerId": 100 + did % 7,
            "StartDate": self._date(cols["CreateDate"], with_offset),
            "FinishDate": self._date(cols["FinishDate"], with_offset),
            "LastQuoteId": cols["LastQuoteId"] or None,
            "LastOrderId": cols["LastOrderId"] or None,
            "DealNumber": did - 400_000,
            **self._stamps(cols, with_offset),
            "OtherProperties": self._deal_properties(r, cols, product),
        }

    def _deal_properties(
        self, r: random.Random, cols: dict[str, int], product: tuple
    ) -> list[dict[str, Any]]:
        slots = self.all_slots
        channel = cols["Id"] % len(CHANNELS)
        renewal = None
        if cols["FinishDate"]:
            renewal = ms_to_local_text(cols["FinishDate"] + 365 * 86_400_000, with_offset=r.random() < 0.5)
        return [
            other_property(field_key("deal", 0x0E), {"StringValue": product[1]}, slots),
            other_property(field_key("deal", 0x0F), {"BoolValue": r.random() < 0.6}, slots),
            other_property(field_key("deal", 0x10), {"DecimalValue": round(product[3], 2)}, slots),
            other_property(field_key("deal", 0x15), {"DateTimeValue": renewal}, slots),
            other_property(field_key("deal", 0x16), {"IntegerValue": r.randrange(1, 200)}, slots),
            other_property(
                field_key("deal", 0x17),
                {"ObjectValueId": option_id(2, channel), "ObjectValueName": CHANNELS[channel]},
                slots,
            ),
        ]

    def _lines(self, entity: str, cols: dict[str, int]) -> list[dict[str, Any]]:
        r = self._rng(entity, cols["Id"])
        owner = "OrderId" if entity == "orders" else "QuoteId"
        lines = []
        for n in range(r.randrange(1, 4)):
            pid, pname, code, price = r.choice(PRODUCTS)
            qty = r.randrange(1, 6)
            discount = r.choice([0, 0, 5, 10])
            lines.append(
                {
                    "Id": cols["Id"] * 10 + n,
                    owner: cols["Id"],
                    "DealId": cols["DealId"],
                    "ContactId": cols["ContactId"],
                    "ProductId": pid,
                    "ProductName": pname,
                    "Quantity": qty,
                    "UnitPrice": price,
                    "Discount": discount,
                    "Total": round(qty * price * (1 - discount / 100), 2),
                    "CurrencyId": 1,
                    "Product": {"Id": pid, "Name": pname, "Code": code},
                }
            )
        return lines

    def _render_orders(self, cols: dict[str, int], with_offset: bool) -> dict[str, Any]:
        return {
            "Id": cols["Id"],
            "DealId": cols["DealId"],
            "ContactId": cols["ContactId"],
            **self._stamps(cols, with_offset),
            "Products": self._lines("orders", cols),
        }

    def _render_quotes(self, cols: dict[str, int], with_offset: bool) -> dict[str, Any]:
        return {
            "Id": cols["Id"],
            "DealId": cols["DealId"],
            "ContactId": cols["ContactId"],
            **self._stamps(cols, with_offset),
            "Products": self._lines("quotes", cols),
        }

    def _render_notes(self, cols: dict[str, int], with_offset: bool) -> dict[str, Any]:
        r = self._rng("notes", cols["Id"])
        return {
            "Id": cols["Id"],
            "ContactId": cols["ContactId"],
            "DealId": cols["DealId"] or None,
            "Date": self._date(cols["CreateDate"], with_offset),
            "TypeId": r.randrange(1, 5),
            "Content": r.choice(
                [
                    "<p>Ligação de acompanhamento.</p>",
                    "Reunião de implantação concluída.",
                    "Cliente pediu orçamento de renovação.",
                    "Visita técnica — tudo ok.",
                ]
            ),
            "CreatorId": 100 + cols["Id"] % 7,
            **self._stamps(cols, with_offset),
        }

    def _render_tasks(self, cols: dict[str, int], with_offset: bool) -> dict[str, Any]:
        r = self._rng("tasks", cols["Id"])
        finished = r.random() < 0.5
        return {
            "Id": cols["Id"],
            "Title": r.choice(
                ["Enviar proposta", "Ligar para o cliente", "Agendar treinamento", "Revisar contrato"]
            ),
            "Description": None,
            "TypeId": r.randrange(1, 5),
            "ContactId": cols["ContactId"],
            "DealId": cols["DealId"] or None,
            "DateTime": self._date(cols["CreateDate"], with_offset),
            "Finished": finished,
            "FinishDate": self._date(cols["LastUpdateDate"], with_offset) if finished else None,
            "Users": [{"UserId": 100 + cols["Id"] % 7}],
            **self._stamps(cols, with_offset),
        }

    def _render_attachments(self, cols: dict[str, int], with_offset: bool) -> dict[str, Any]:
        r = self._rng("attachments", cols["Id"])
        ext, ctype = r.choice(
            [
                ("pdf", "application/pdf"),
                ("png", "image/png"),
                ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            ]
        )
        name = f"{r.choice(['proposta', 'contrato', 'comprovante', 'apresentação'])}-{cols['Id']}.{ext}"
        return {
            "Id": cols["Id"],
            "Name": name,
            "FileName": name,
            "ContentType": ctype,
            "Url": f"https://files.sandbox.invalid/{cols['Id']}/{name}",
            "ContactId": cols["ContactId"],
            "DealId": cols["DealId"] or None,
            "CreateDate": self._date(cols["CreateDate"], with_offset),
        }
