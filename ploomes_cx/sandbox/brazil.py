"""Brazilian CRM material for the sandbox: names, companies, places, products, and CPF/CNPJ with
their real check digits (and a way to spoil them), written the ways people write them."""

from __future__ import annotations

import unicodedata

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


def spoil(d: str) -> str:
    """Same document with a wrong last check digit."""
    return d[:-1] + str((int(d[-1]) + 1) % 10)


def slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())
