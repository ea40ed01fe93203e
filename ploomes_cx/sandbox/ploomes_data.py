"""A deterministic, seedable Brazilian CRM dataset for the sandbox Ploomes server.

Only a few integer columns per entity live in memory (numpy arrays: ids, parent ids, status,
change dates); every other field is rendered on demand from a per-record seeded RNG. That keeps a
million contacts in tens of megabytes and makes any record reproducible from (seed, entity, id).

The dirt is deliberate and documented so tests can rely on it: formatted vs bare vs invalid
CPF/CNPJ, upper-case and broken e-mails, missing names, accents, companies entered twice with small
differences (`twin_of`), records sharing a change date, and records stamped exactly at midnight.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

ACCOUNT_TZ = ZoneInfo("America/Sao_Paulo")
ENTITY_CODES = {"contacts": 1, "deals": 2, "orders": 3, "quotes": 4, "notes": 5, "tasks": 6, "attachments": 7}
FIELD_GUID = "0A1B2C3D-0000-0000-0000-0000000000{:02X}"

FIRST_NAMES = [
    "João",
    "Maria",
    "José",
    "Ana",
    "Antônio",
    "Francisca",
    "Carlos",
    "Adriana",
    "Paulo",
    "Juliana",
    "Lucas",
    "Márcia",
    "Luís",
    "Fernanda",
    "Pedro",
    "Patrícia",
    "Marcos",
    "Aline",
    "Gabriel",
    "Letícia",
    "Rafael",
    "Camila",
    "Thiago",
    "Bruna",
    "Felipe",
    "Larissa",
    "Rodrigo",
    "Vitória",
    "Sérgio",
    "Conceição",
]
LAST_NAMES = [
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Rodrigues",
    "Ferreira",
    "Alves",
    "Pereira",
    "Lima",
    "Gomes",
    "Ribeiro",
    "Carvalho",
    "Araújo",
    "Melo",
    "Barbosa",
    "Conceição",
    "Romão",
    "Assunção",
    "Magalhães",
    "Brandão",
]
COMPANY_HEADS = [
    "Padaria",
    "Comércio",
    "Indústria",
    "Construtora",
    "Transportes",
    "Farmácia",
    "Distribuidora",
    "Metalúrgica",
    "Agropecuária",
    "Tecnologia",
    "Consultoria",
    "Laticínios",
    "Auto Peças",
    "Clínica",
]
COMPANY_TAILS = [
    "São João",
    "Boa Esperança",
    "Três Irmãos",
    "Nossa Senhora",
    "Paraná",
    "Ipê Amarelo",
    "Jequitibá",
    "Guaraná",
    "Açaí",
    "Pão de Açúcar",
    "Vale do Itajaí",
    "Serra Gaúcha",
    "Maranhão",
    "Ceará",
]
COMPANY_SUFFIXES = ["Ltda", "LTDA", "S.A.", "ME", "EIRELI", "Ltda."]
PLACES = [
    "Centro",
    "Jardim América",
    "Vila Nova",
    "Bela Vista",
    "Santa Cruz",
    "Boa Viagem",
    "Pinheiros",
    "Savassi",
    "Moinhos",
    "Itaim",
    "Barra",
    "Batel",
    "Aldeota",
    "Meireles",
    "Ondina",
    "Tambaú",
    "Ponta Verde",
    "Pituba",
    "Lagoa",
    "Trindade",
    "Cambuí",
    "Asa Sul",
    "Asa Norte",
    "Campo Belo",
    "Mooca",
    "Tatuapé",
    "Lapa",
    "Penha",
    "Glória",
    "Tijuca",
    "Méier",
    "Icaraí",
    "Jatiúca",
    "Cabo Branco",
    "Renascença",
    "Cohama",
    "Umarizal",
    "Adrianópolis",
    "Ponta Negra",
    "Petrópolis",
    "Cidade Alta",
    "Jardins",
    "Farol",
    "Graças",
    "Espinheiro",
    "Casa Forte",
    "Madalena",
    "Torre",
    "Derby",
    "Aflitos",
]
EMAIL_DOMAINS = ["gmail.com", "hotmail.com", "uol.com.br", "terra.com.br", "empresa.com.br", "bol.com.br"]
SEGMENTS = ["Varejo", "Indústria", "Serviços", "Agronegócio", "Saúde", "Educação"]
PRODUCTS = [
    (101, "Plano Básico", "PB-01", 199.0),
    (102, "Plano Pro", "PP-02", 499.0),
    (103, "Implantação", "IMP-03", 1500.0),
    (104, "Treinamento", "TRN-04", 800.0),
    (105, "Suporte Premium", "SUP-05", 350.0),
]


def field_key(entity: str, n: int) -> str:
    return f"{entity}_{FIELD_GUID.format(n)}"


# Field types of the sandbox account (`/Fields@Types`): TypeId -> (Name, NativeType). Only 7 (option
# list) and 18 (image) are known TypeIds (ploomes-api.md §6, C [S2]); the other ids are ours, so the
# pipeline must read the slot from `Type.NativeType` / the type's name, as it must on a real account.
FIELD_TYPES: dict[int, tuple[str, str]] = {
    1: ("Texto", "String"),
    2: ("Texto longo", "BigString"),
    4: ("Número inteiro", "Integer"),
    5: ("Data", "DateTime"),
    6: ("Número decimal", "Decimal"),
    7: ("Lista de opções", "Integer"),
    9: ("Usuário", "Integer"),
    10: ("Verdadeiro ou falso", "Bool"),
    18: ("Imagem", "String"),
}
CHANNELS = ["Indicação", "Inbound", "Outbound", "Evento"]
USERS = {100 + n: name for n, name in enumerate(["Ana Lima", "Bruno Reis", "Carla Dias", "Davi Rocha"])}
OPTION_TABLES = {1: SEGMENTS, 2: CHANNELS}


def option_id(table: int, position: int) -> int:
    return table * 100 + position + 1


# The custom-field catalogue (`/Fields`). EntityId 1 = contact, 2 = deal (ploomes-api.md §6).
# One field of every type on contacts, and a spread of them on deals.
CUSTOM_FIELDS: list[dict[str, Any]] = [
    {"Key": field_key("contact", 0x0A), "Name": "Segmento", "EntityId": 1, "TypeId": 7, "OptionsTableId": 1},
    {"Key": field_key("contact", 0x0B), "Name": "Número de funcionários", "EntityId": 1, "TypeId": 4},
    {"Key": field_key("contact", 0x0C), "Name": "Data de fundação", "EntityId": 1, "TypeId": 5},
    {"Key": field_key("contact", 0x0D), "Name": "Código ERP", "EntityId": 1, "TypeId": 1},
    {"Key": field_key("contact", 0x11), "Name": "Observações", "EntityId": 1, "TypeId": 2},
    {"Key": field_key("contact", 0x12), "Name": "Faturamento anual", "EntityId": 1, "TypeId": 6},
    {"Key": field_key("contact", 0x13), "Name": "Cliente ativo", "EntityId": 1, "TypeId": 10},
    {"Key": field_key("contact", 0x14), "Name": "Responsável CS", "EntityId": 1, "TypeId": 9},
    {"Key": field_key("deal", 0x0E), "Name": "Plano contratado", "EntityId": 2, "TypeId": 1},
    {"Key": field_key("deal", 0x0F), "Name": "Recorrente", "EntityId": 2, "TypeId": 10},
    {"Key": field_key("deal", 0x10), "Name": "Valor mensal", "EntityId": 2, "TypeId": 6},
    {"Key": field_key("deal", 0x15), "Name": "Data de renovação", "EntityId": 2, "TypeId": 5},
    {"Key": field_key("deal", 0x16), "Name": "Licenças", "EntityId": 2, "TypeId": 4},
    {"Key": field_key("deal", 0x17), "Name": "Canal", "EntityId": 2, "TypeId": 7, "OptionsTableId": 2},
]
FIELD_IDS = {f["Key"]: n for n, f in enumerate(CUSTOM_FIELDS, start=100)}
NATIVE_FIELDS: list[dict[str, Any]] = [
    {"Key": "contact_name", "Name": "Nome", "EntityId": 1, "TypeId": 1, "PropertyName": "Name"},
    {"Key": "contact_register", "Name": "CPF/CNPJ", "EntityId": 1, "TypeId": 1, "PropertyName": "Register"},
    {"Key": "contact_email", "Name": "E-mail", "EntityId": 1, "TypeId": 1, "PropertyName": "Email"},
    {"Key": "deal_title", "Name": "Título", "EntityId": 2, "TypeId": 1, "PropertyName": "Title"},
    {"Key": "deal_amount", "Name": "Valor", "EntityId": 2, "TypeId": 6, "PropertyName": "Amount"},
]
EMPTY_SLOTS: dict[str, Any] = {
    slot: None
    for slot in (
        "StringValue",
        "BigStringValue",
        "IntegerValue",
        "DecimalValue",
        "DateTimeValue",
        "BoolValue",
        "ObjectValueId",
        "ObjectValueName",
        "UserValueId",
        "UserValueName",
        "ProductValueId",
        "ProductValueName",
        "AttachmentValueId",
        "AttachmentValueName",
        "ContactValueId",
        "ContactValueName",
    )
}


def other_property(key: str, filled: dict[str, Any], all_slots: bool = True) -> dict[str, Any]:
    """One `OtherProperties` item as Ploomes sends it: every typed slot, the unused ones null (§7)."""
    item: dict[str, Any] = {"FieldKey": key, "FieldId": FIELD_IDS.get(key, 0)}
    if all_slots:
        item.update(EMPTY_SLOTS)
    item.update(filled)
    return item


def cnpj_digits(base12: str) -> str:
    """Append the two CNPJ check digits (modulo-11 weights from the Receita Federal rule)."""
    digits = [int(c) for c in base12]
    for weights in ([5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2], [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]):
        total = sum(d * w for d, w in zip(digits, weights, strict=False))
        rest = total % 11
        digits.append(0 if rest < 2 else 11 - rest)
    return "".join(map(str, digits))


def cpf_digits(base9: str) -> str:
    digits = [int(c) for c in base9]
    for start in (10, 11):
        total = sum(d * w for d, w in zip(digits, range(start, 1, -1), strict=False))
        rest = (total * 10) % 11
        digits.append(0 if rest == 10 else rest)
    return "".join(map(str, digits))


def format_cnpj(d: str) -> str:
    return f"{d[:2]}.{d[2:5]}.{d[5:8]}/{d[8:12]}-{d[12:]}"


def format_cpf(d: str) -> str:
    return f"{d[:3]}.{d[3:6]}.{d[6:9]}-{d[9:]}"


def _spoil(d: str) -> str:
    """Same document with a wrong last check digit."""
    return d[:-1] + str((int(d[-1]) + 1) % 10)


def to_ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


def ms_to_local_text(ms: int, with_offset: bool = True) -> str:
    """Ploomes-style date text: account-local, millisecond precision, offset optional (§5)."""
    local = dt.datetime.fromtimestamp(ms / 1000, tz=ACCOUNT_TZ)
    text = local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}"
    return text + (local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:] if with_offset else "")


@dataclass
class Table:
    """Columnar index of one entity set; `cols` hold int64 (dates in epoch ms, 0 = null)."""

    name: str
    base_id: int
    cols: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.cols["Id"])

    def index_of(self, record_id: int) -> int:
        i = record_id - self.base_id
        if not 0 <= i < len(self):
            raise KeyError(record_id)
        return i


@dataclass
class PloomesDataset:
    """The whole sandbox account. `persons` is the scale knob (1,000,000 fits in memory)."""

    persons: int = 2000
    seed: int = 42
    start: str = "2026-11-01"
    days: int = 14
    tables: dict[str, Table] = field(default_factory=dict)
    overrides: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    # `OtherProperties` items carry every value slot, unused ones null, as Ploomes sends them (§7);
    # False serves only the filled slot, the other shape public clients show.
    all_slots: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._generate()

    # ---- generation of the columnar index -------------------------------------------------
    def _dates(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Change dates over `days` local days, with the collisions real CRMs have."""
        t0 = to_ms(dt.datetime.fromisoformat(self.start).replace(tzinfo=ACCOUNT_TZ))
        span = self.days * 86_400_000
        ms = t0 + rng.integers(0, span, n)
        minute = rng.random(n) < 0.25  # saved by a person: whole-second stamps collide
        ms[minute] -= ms[minute] % 60_000
        batch = rng.random(n) < 0.04  # a bulk import: one stamp for many records
        ms[batch] = t0 + 86_400_000 + 10 * 3_600_000 + 123
        midnight = rng.random(n) < 0.01  # exactly at a window edge
        ms[midnight] -= (ms[midnight] - t0) % 86_400_000
        return ms.astype(np.int64)

    def _generate(self) -> None:
        rng = np.random.default_rng(self.seed)
        p = max(1, self.persons)
        o = max(1, p // 4)
        d = max(1, p // 2)
        orgs_ids = np.arange(o, dtype=np.int64)
        # Contacts: organizations first, then persons (TypeId 1 / 2).
        n_contacts = o + p
        type_id = np.concatenate([np.ones(o, np.int64), np.full(p, 2, np.int64)])
        company = np.concatenate([np.zeros(o, np.int64), 1000 + rng.choice(orgs_ids, p)])
        company[o:][rng.random(p) < 0.08] = 0  # persons with no company
        lud = self._dates(rng, n_contacts)
        create = lud - rng.integers(0, 400 * 86_400_000, n_contacts)
        self.n_orgs = o
        self.tables["contacts"] = Table(
            "contacts",
            1000,
            {
                "Id": np.arange(1000, 1000 + n_contacts, dtype=np.int64),
                "TypeId": type_id,
                "CompanyId": company,
                "LastUpdateDate": lud,
                "CreateDate": create,
            },
        )
        # Deals: contact is an organization (80%) or a person; status 1 open, 2 won, 3 lost.
        contact = np.where(
            rng.random(d) < 0.8, 1000 + rng.choice(orgs_ids, d), 1000 + o + rng.integers(0, p, d)
        )
        person = np.where(rng.random(d) < 0.7, 1000 + o + rng.integers(0, p, d), 0)
        status = rng.choice(np.array([1, 2, 3], np.int64), d, p=[0.5, 0.35, 0.15])
        lud = self._dates(rng, d)
        deal_ids = (
            np.arange(500_000, 500_000 + d, dtype=np.int64)
            if d < 500_000
            else np.arange(5_000_000, 5_000_000 + d, dtype=np.int64)
        )
        finish = np.where(status > 1, lud - rng.integers(0, 3_600_000, d), 0)
        has_quote = rng.random(d) < 0.6
        has_order = (status == 2) & (rng.random(d) < 0.8)
        quote_ids = np.where(has_quote, 0, 0)
        order_ids = np.where(has_order, 0, 0)
        nq, no = int(has_quote.sum()), int(has_order.sum())
        quote_ids[has_quote] = np.arange(70_000_000, 70_000_000 + nq)
        order_ids[has_order] = np.arange(80_000_000, 80_000_000 + no)
        self.tables["deals"] = Table(
            "deals",
            int(deal_ids[0]),
            {
                "Id": deal_ids,
                "ContactId": contact,
                "PersonId": person,
                "StatusId": status,
                "LastUpdateDate": lud,
                "CreateDate": lud - rng.integers(0, 90 * 86_400_000, d),
                "FinishDate": finish,
                "LastQuoteId": quote_ids,
                "LastOrderId": order_ids,
            },
        )
        for name, ids, mask, base in (
            ("quotes", quote_ids, has_quote, 70_000_000),
            ("orders", order_ids, has_order, 80_000_000),
        ):
            n = int(mask.sum())
            self.tables[name] = Table(
                name,
                base,
                {
                    "Id": ids[mask].astype(np.int64),
                    "DealId": deal_ids[mask],
                    "ContactId": contact[mask],
                    "LastUpdateDate": lud[mask],
                    "CreateDate": lud[mask] - 3_600_000,
                },
            )
            assert len(self.tables[name]) == n
        # Timeline: notes (InteractionRecords), tasks, attachments (CreateDate only).
        for name, n, base in (
            ("notes", p // 2, 30_000_000),
            ("tasks", p // 2, 40_000_000),
            ("attachments", max(1, p // 5), 60_000_000),
        ):
            n = max(1, n)
            on_deal = rng.random(n) < 0.4
            deal_pick = rng.integers(0, d, n)
            c = np.where(on_deal, contact[deal_pick], 1000 + rng.integers(0, n_contacts, n))
            cols = {
                "Id": np.arange(base, base + n, dtype=np.int64),
                "ContactId": c,
                "DealId": np.where(on_deal, deal_ids[deal_pick], 0),
            }
            dates = self._dates(rng, n)
            if name == "attachments":
                cols["CreateDate"] = dates
            else:
                cols["LastUpdateDate"] = dates
                cols["CreateDate"] = dates - rng.integers(0, 30 * 86_400_000, n)
            self.tables[name] = Table(name, base, cols)

    # ---- lookups used by the server ------------------------------------------------------
    def twin_of(self, contact_id: int) -> int | None:
        """The earlier contact this one re-enters (the same company or person typed in twice), or None.

        Every 29th organization and every 41st person after the first few is such a twin.
        """
        i = contact_id - 1000
        if i < self.n_orgs:
            step, first = 29, 0
        else:
            step, first = 41, self.n_orgs
            i -= first
        if i >= 10 and i % step == 0:
            j = (i // 3 + 17 + (i * 31) % 97) % i  # an earlier record, different for every twin
            return 1000 + first + (j - 1 if j >= 10 and j % step == 0 else j)
        return None

    def expected_ids(self, entity: str, start: dt.datetime, end: dt.datetime) -> list[int]:
        """Ground truth for tests and benchmarks: ids of our `entity` whose change date is in [start, end)."""
        table_name, type_id = {"organizations": ("contacts", 1), "persons": ("contacts", 2)}.get(
            entity, (entity, None)
        )
        table = self.tables[table_name]
        stamps = table.cols["LastUpdateDate" if "LastUpdateDate" in table.cols else "CreateDate"]
        mask = (stamps >= to_ms(start)) & (stamps < to_ms(end))
        if type_id is not None:
            mask &= table.cols["TypeId"] == type_id
        return [int(i) for i in table.cols["Id"][mask]]

    def touch(
        self, entity: str, record_id: int, changes: dict[str, Any] | None = None, when_ms: int | None = None
    ) -> None:
        """Change a record as a CRM user would: new field values and a new LastUpdateDate."""
        table = self.tables[entity]
        i = table.index_of(record_id)
        date_col = "LastUpdateDate" if "LastUpdateDate" in table.cols else "CreateDate"
        with self.lock:
            if changes:
                self.overrides.setdefault((entity, record_id), {}).update(changes)
            table.cols[date_col][i] = when_ms if when_ms is not None else to_ms(dt.datetime.now(ACCOUNT_TZ))

    def set_date(self, entity: str, record_id: int, column: str, when_ms: int) -> None:
        table = self.tables[entity]
        with self.lock:
            table.cols[column][table.index_of(record_id)] = when_ms

    # ---- rendering -----------------------------------------------------------------------
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
        return name, cpf, key, f"{_slug(first)}.{_slug(last)}{person_id}", r.choice(EMAIL_DOMAINS)

    def _render_contacts(self, cols: dict[str, int], with_offset: bool) -> dict[str, Any]:
        cid = cols["Id"]
        r = self._rng("contacts", cid)
        is_org = cols["TypeId"] == 1
        twin = self.twin_of(cid)
        base_id = twin or cid
        if is_org:
            name, cnpj, key = self._company_base(base_id)
            domain = f"{_slug(name.split()[1])}{base_id}.com.br"
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
                    else _spoil(cnpj)
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
                    else _spoil(cpf)
                    if roll < 0.88
                    else ""
                )
            contact_name = None
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
        if is_org and not twin and (cid - 1000) % 37 == 5:
            # an accountant's office keeps the books of several companies: one e-mail, many CNPJs
            email = f"contabilidade@escritorio{((cid - 1000) // 37) % 4}.com.br"
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


def _slug(text: str) -> str:
    import unicodedata

    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


def fields_catalogue() -> list[dict[str, Any]]:
    """`/Fields` items with their `Type` and `OptionsTable` navigations filled (the server drops
    them unless expanded): `Type {Id, Name, NativeType}`, `OptionsTable {Id, Options[{Id, Name}]}`."""
    out = []
    for n, f in enumerate([*NATIVE_FIELDS, *CUSTOM_FIELDS], start=1):
        type_name, native = FIELD_TYPES[f["TypeId"]]
        table = f.get("OptionsTableId")
        out.append(
            {
                "Id": FIELD_IDS.get(f["Key"], n),
                "Key": f["Key"],
                "Name": f["Name"],
                "Label": f["Name"],
                "EntityId": f["EntityId"],
                "TypeId": f["TypeId"],
                "Type": {"Id": f["TypeId"], "Name": type_name, "NativeType": native},
                "OptionsTableId": table,
                "OptionsTable": None
                if table is None
                else {
                    "Id": table,
                    "Options": [
                        {"Id": option_id(table, i), "Name": name}
                        for i, name in enumerate(OPTION_TABLES[table])
                    ],
                },
                "PropertyName": f.get("PropertyName"),
                "Required": False,
                "Unique": False,
                "Hidden": False,
                "Multiple": False,
            }
        )
    return sorted(out, key=lambda f: f["Id"])
