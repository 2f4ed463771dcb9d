"""The fixed grading mode's first pass: an answer as typed, turned into the LaTeX the rest reads.

Two classes of "the same answer written differently", each handled as a class:

* Unicode math (:func:`unicode_to_latex`): typographic minus signs and dashes, ``×·÷``, ``√∛``,
  ``π∞°``, superscript and subscript digits, vulgar fractions, ``≤≥≠``, currency signs,
  non-breaking, thin and other spaces, fullwidth ASCII. Each becomes the LaTeX (or ASCII) a
  typed answer would use, so ``2³`` is ``2^{3}`` and ``−5`` is ``-5``.
* Words around the answer (:func:`strip_wrappers`): ``\\boxed{}``, ``$..$``, ``\\(..\\)``, a leading
  phrase ending in "is"/":" ("The answer is 5", ``\\text{Answer: }5``), a trailing "is the answer"
  or full stop, ``\\displaystyle``, and a variable name in front (``x = 5``, ``f(x) = 2x``,
  ``x = 1 \\text{ or } x = 2``) when the ground truth names none. Both sides naming *different*
  variables (``y = 5`` against ``x = 5``) are told apart by :func:`split_name`.

The reference (``prm800k``) mode never runs this module.
"""
import re

from labeling.core import fixed_numbers
from labeling.core.fixed_mode import NUMBER_GAP

# ---------------------------------------------------------------- Unicode math

_DASHES = "\u2212\u2010\u2011\u2012\u2013\ufe63\uff0d"  # minus sign, hyphens, figure/en dash, small/fullwidth
_SPACES = "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u2061\u2062\u2063"  # zero-width and invisible operators
_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱ", "0123456789+-=()ni"))
_SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎", "0123456789+-=()"))
_VULGAR = {"½": (1, 2), "⅓": (1, 3), "⅔": (2, 3), "¼": (1, 4), "¾": (3, 4), "⅕": (1, 5), "⅖": (2, 5),
           "⅗": (3, 5), "⅘": (4, 5), "⅙": (1, 6), "⅚": (5, 6), "⅐": (1, 7), "⅛": (1, 8), "⅜": (3, 8),
           "⅝": (5, 8), "⅞": (7, 8), "⅑": (1, 9), "⅒": (1, 10)}
# One character -> LaTeX. A command gets a trailing space so "πr" does not become "\pir".
_SYMBOLS = {
    "×": "\\times ", "✕": "\\times ", "⨯": "\\times ", "·": "\\cdot ", "⋅": "\\cdot ", "∙": "\\cdot ",
    "∗": "*", "÷": "/", "∕": "/", "⁄": "/", "π": "\\pi ", "∞": "\\infty ", "°": "^\\circ ",
    "º": "^\\circ ", "≤": "\\le ", "⩽": "\\le ", "≥": "\\ge ", "⩾": "\\ge ", "≠": "\\neq ", "±": "\\pm ",
    "∓": "\\mp ", "∪": "\\cup ", "∩": "\\cap ", "∈": "\\in ", "→": "\\to ", "′": "'", "″": "''",
    "€": "\\$", "£": "\\$", "¥": "\\$", "＄": "\\$",
    "（": "(", "）": ")", "，": ",", "．": ".", "∶": ":",
}
_ROOTS = {"√": "", "∛": "3", "∜": "4"}
_ROOT_ARGUMENT = re.compile(r"\s*(\{|\(|\\[A-Za-z]+|\d+(?:\.\d+)?|[A-Za-z])")


def unicode_to_latex(s):
    s = s.translate(_CHARACTER_TABLE)
    s = _runs_of(s, _SUPERSCRIPTS, "^{%s}")
    s = _runs_of(s, _SUBSCRIPTS, "_{%s}")
    s = "".join(" \\frac{%d}{%d}" % _VULGAR[ch] if ch in _VULGAR else ch for ch in s)
    for root, index in _ROOTS.items():
        s = _spell_roots(s, root, index)
    return "".join(_SYMBOLS.get(ch, ch) for ch in s)


def _fullwidth():
    table = {0xFF01 + k: 0x21 + k for k in range(0x5E)}  # "１２" -> "12", "ｘ" -> "x"
    table.update({ord(ch): "-" for ch in _DASHES})
    table.update({ord(ch): " " for ch in _SPACES})
    table.update({ord(ch): None for ch in _INVISIBLE})
    return table


_CHARACTER_TABLE = _fullwidth()


def _runs_of(s, table, template):
    out, run = [], []
    for ch in s + "\0":
        if ch in table:
            run.append(table[ch])
            continue
        if run:
            out.append(template % "".join(run))
            run = []
        out.append(ch)
    return "".join(out[:-1])


def _spell_roots(s, root, index):
    command = "\\sqrt" if not index else "\\sqrt[%s]" % index
    while root in s:
        at = s.index(root)
        found = _ROOT_ARGUMENT.match(s, at + 1)
        if not found:
            return s.replace(root, command)
        start, token = found.start(1), found.group(1)
        if token in "({":
            close = _matching(s, start)
            if close is None:
                return s.replace(root, command)
            body, end = s[start + 1:close], close + 1
        else:
            body, end = token, found.end(1)
        s = "%s%s{%s}%s" % (s[:at], command, body, s[end:])
    return s


def _matching(s, start):
    pair = {"(": ")", "{": "}"}[s[start]]
    depth = 0
    for pos in range(start, len(s)):
        depth += (s[pos] == s[start]) - (s[pos] == pair)
        if depth == 0:
            return pos
    return None


# ---------------------------------------------------------------- words around the answer

_ENVELOPES = (re.compile(r"^\$+(?P<body>.*?)\$+$", re.S), re.compile(r"^\\\((?P<body>.*)\\\)$", re.S),
              re.compile(r"^\\\[(?P<body>.*)\\\]$", re.S))
_BOXED = re.compile(r"^\\(?:boxed|fbox)\s*\{(?P<body>.*)\}$", re.S)
_STYLE = re.compile(r"\\(?:displaystyle|textstyle|scriptstyle)\b\s*")
# "The answer is", "the final answer is:", "\text{Answer: }", "So x is" ... : words only, then is/are/:.
_LEAD_PHRASE = re.compile(r"^(?:\\text(?:bf|rm)?\{)?\s*[A-Za-z']+(?:\s+[A-Za-z']+){0,7}?"
                          r"(?:\s+(?:is|are|equals|was)\b|(?<=[A-Za-z]{3})\s*:)\s*(?P<close>\}\s*)?(?=\S)", re.I)
_TRAIL_PHRASE = re.compile(r"\s*(?:\\text\{\s*)?(?:is the (?:final )?answer|is correct)\.?\s*\}?\s*$", re.I)
_NAME = r"(?:[A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?'*|\\[A-Za-z]+|[A-Za-z](?:\^\{?-1\}?)?\([A-Za-z]\))"
_NAMED = re.compile(r"^\s*(?P<name>%s)\s*=(?!=)\s*(?P<value>.+)$" % _NAME, re.S)
_ALTERNATIVES = re.compile(r"\s*(?:,|;|\\text\{\s*(?:or|and)\s*\}|\\(?:q)?quad|\bor\b|\band\b)\s*")


def strip_wrappers(s):
    """The answer without the words and markup around it."""
    for _ in range(3):  # "$\boxed{5}$": peel in any order
        before = s
        s = s.strip()
        for envelope in (*_ENVELOPES, _BOXED):
            found = envelope.match(s)
            if found and _balanced(found.group("body")):
                s = found.group("body").strip()
        s = _STYLE.sub("", s)
        s = _TRAIL_PHRASE.sub("", s)
        if s.count("{") > s.count("}"):
            s += "}"  # "\text{(A) is correct}": the phrase took the group's end
        lead = _LEAD_PHRASE.match(s)
        if lead:
            s = s[lead.end():]
            if s.endswith("}") and lead.group(0).startswith("\\text") and not lead.group("close"):
                s = s[:-1]  # "\text{The answer is 5}": the group closes at the end
        if s.endswith(".") and not s.endswith("..") and not re.search(r"\d\.$", s):
            s = s[:-1]
        if s == before:
            break
    return s.strip()


def _balanced(body):
    depth = 0
    for ch in body:
        depth += (ch == "{") - (ch == "}")
        if depth < 0:
            return False
    return depth == 0


def split_name(s):
    """(the variable an answer names, lower case, or None; the answer without it).

    "x = 5" -> ("x", "5"); "x = 1 \\text{ or } x = 2" -> ("x", "1, 2") (one name throughout);
    "y = 2x + 3" -> ("y", "2x + 3"); "2x + 3 = y", "5" -> (None, unchanged).
    """
    pieces = _ALTERNATIVES.split(s)
    if len(pieces) > 1:
        named = [_NAMED.match(p) for p in pieces]
        if all(named) and len({_name(m) for m in named}) == 1 and \
                not any("=" in m.group("value") for m in named):
            return _name(named[0]), ", ".join(m.group("value").strip() for m in named)
    found = _NAMED.match(s)
    if found and "=" not in found.group("value"):
        return _name(found), found.group("value").strip()
    return None, s


def has_variable(value):
    """Does a value name a variable (a letter outside LaTeX commands, \\text and units aside)?"""
    return re.search(r"[A-Za-z]", re.sub(r"\\text\{[^{}]*\}|\\[A-Za-z]+", "", value)) is not None


def _name(found):
    return re.sub(r"[\s{}]", "", found.group("name")).lower()


# ---------------------------------------------------------------- the pass

_DIV = re.compile(r"\\div(?![A-Za-z])")
_BRACKETED = re.compile(r"^\s*(?:\\left)?[(\[].*[)\]]\s*$", re.S)
_TIGHT_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?![\d.]))")
_LOOSE_COMMA = re.compile(r"(?<=\d),\s+(?=\d{3}(?!\d))")
_NE = re.compile(r"\\ne(?![A-Za-z])")  # pylatexenc drops \ne (it knows \neq)


def first_pass(answer):
    """An answer as the fixed mode reads it: Unicode spelt in LaTeX, wrappers and words gone,
    repeating decimals, mixed numbers and percent marks read (:mod:`labeling.core.fixed_numbers`)."""
    s = strip_wrappers(unicode_to_latex(answer))
    s = _NE.sub(r"\\neq", _DIV.sub("/", s))
    if _BRACKETED.match(s):
        if ", " in s:  # "(1,000, 2)": ", " separates, so "1,000" is a thousand
            s = _TIGHT_THOUSANDS.sub("", s)
    else:  # "1, 000" is two numbers, not a thousand (spaces go before commas are read)
        s = _LOOSE_COMMA.sub("," + NUMBER_GAP, s)
    s = fixed_numbers.drop_percent(s)
    s = fixed_numbers.repeating_to_fractions(s)
    return fixed_numbers.mixed_to_fractions(s).strip()
