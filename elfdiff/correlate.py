"""Pair each symbol and section of the original object with its twin."""

from __future__ import annotations

import logging
from collections import defaultdict

from .elf import STT_FILE, STT_OBJECT, STT_SECTION, ElfObject, Symbol
from .symbols import is_special_static, normalize

log = logging.getLogger(__name__)


def _users(obj: ElfObject) -> dict[Symbol, frozenset[str]]:
    """Map each symbol to the normalized names of the functions that refer to it."""
    users: dict[Symbol, set[str]] = defaultdict(set)
    for section in obj.sections:
        if section.target is None or section.target.bundle is None:
            continue
        user = normalize(section.target.bundle.name)
        for relocation in section.relocations:
            users[relocation.symbol].add(user)
    return {symbol: frozenset(names) for symbol, names in users.items()}


def _symbol_keys(obj: ElfObject) -> dict[tuple, list[Symbol]]:
    users = None
    keys: dict[tuple, list[Symbol]] = defaultdict(list)
    for symbol in obj.symbols[1:]:
        if symbol.type == STT_SECTION or is_special_static(symbol):
            continue
        key: tuple = (normalize(symbol.name), symbol.type)
        # A static local ("count.12") is distinguished from its namesakes by the functions that use it.
        if symbol.type == STT_OBJECT and normalize(symbol.name) != symbol.name:
            if users is None:
                users = _users(obj)
            key += (users.get(symbol, frozenset()),)
        keys[key].append(symbol)
    return keys


def _pair(original: Symbol, patched: Symbol) -> None:
    original.twin = patched
    patched.twin = original


def correlate(original: ElfObject, patched: ElfObject) -> None:
    """Set the twin of every symbol and section that exists in both objects."""
    original_keys = _symbol_keys(original)
    patched_keys = _symbol_keys(patched)
    for key, originals in original_keys.items():
        candidates = patched_keys.get(key, [])
        if len(originals) == 1 and len(candidates) == 1:
            _pair(originals[0], candidates[0])
            continue
        # Namesakes (two files' worth of STT_FILE, clones): exact names first, then order.
        by_name = {symbol.name: symbol for symbol in candidates}
        rest = []
        for symbol in originals:
            twin = by_name.pop(symbol.name, None)
            if twin is not None:
                _pair(symbol, twin)
            else:
                rest.append(symbol)
        leftover = [symbol for symbol in candidates if symbol.twin is None]
        for symbol, twin in zip(rest, leftover):
            if key[1] != STT_FILE:
                log.debug("correlated %s with %s by position", symbol.name, twin.name)
            _pair(symbol, twin)

    _correlate_sections(original, patched)


def _correlate_sections(original: ElfObject, patched: ElfObject) -> None:
    by_name: dict[str, list] = defaultdict(list)
    for section in patched.sections[1:]:
        if section.bundle is None and section.target is None:
            by_name[normalize(section.name)].append(section)

    for section in original.sections[1:]:
        if section.target is not None:
            continue
        twin = None
        if section.bundle is not None:
            if section.bundle.twin is not None:
                twin = section.bundle.twin.section
                if twin is not None and twin.bundle is not section.bundle.twin:
                    twin = None
        else:
            candidates = by_name.get(normalize(section.name), [])
            exact = [candidate for candidate in candidates if candidate.name == section.name]
            if exact:
                twin = exact[0]
            elif len(candidates) == 1:
                twin = candidates[0]
        if twin is None or twin.twin is not None:
            continue
        section.twin = twin
        twin.twin = section
        if section.rela is not None and twin.rela is not None:
            section.rela.twin = twin.rela
            twin.rela.twin = section.rela
        if section.section_symbol is not None and twin.section_symbol is not None:
            _pair(section.section_symbol, twin.section_symbol)
