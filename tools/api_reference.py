#!/usr/bin/python3
"""tools/api_reference.py: docs/reference.md from the comments of memlens's public headers.

Runs Doxygen with docs/Doxyfile, reads its XML, and writes one Markdown section per public header,
in the order of the layers. Standard library only, for Debian's /usr/bin/python3:

    tools/api_reference.py --write    # regenerate docs/reference.md (the `docs` CMake target)
    tools/api_reference.py --check    # the api_reference test

--check fails, listing file:line, for each public declaration without a comment (Doxygen's own
"is not documented" warnings, plus what it does not warn about: namespace-scope declarations,
enum values and public macros), for any other Doxygen warning, and when docs/reference.md differs
from what this script writes now. With MEMLENS_UPDATE_GOLDEN=1 it rewrites the file instead of
failing on the difference. Public means namespace memlens outside memlens::detail and
memlens::unversioned, and macros not named MEMLENS_DETAIL_*.
"""
import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(ROOT, "docs", "reference.md")
LAYERS = ["core", "model", "sources", "observe", "view", "testing", "monitor", "helpers", ""]
FRONT_DOORS = ["memlens/track.hpp", "memlens/memlens.hpp", "memlens/hooks.hpp"]
PRIVATE_SCOPES = ("memlens::detail", "memlens::unversioned")
# Macros that public headers define for memlens's own use, though not named MEMLENS_DETAIL_*.
INTERNAL_MACROS = {"MEMLENS_CONSTINIT"}  # core/state.hpp: constinit where the compiler has it
REGENERATE = "`tools/api_reference.py --write` (or `cmake --build <dir> --target docs`)"


def text(node):
    """The Markdown of a Doxygen description: paragraphs, code spans, links and lists."""
    def inline(n):
        parts = [n.text or ""]
        for child in n:
            if child.tag == "computeroutput":
                parts.append("`%s`" % "".join(child.itertext()))
            elif child.tag == "ulink":
                parts.append("[%s](%s)" % ("".join(child.itertext()), child.get("url")))
            elif child.tag in ("itemizedlist", "orderedlist"):
                items = ["- " + " ".join(inline(item).split()) for item in child.findall("listitem")]
                parts.append("\n\n" + "\n".join(items) + "\n\n")
            elif child.tag == "para":
                parts.append("\n\n" + inline(child) + "\n\n")
            else:
                parts.append(inline(child))
            parts.append(child.tail or "")
        return "".join(parts)

    if node is None:
        return ""
    blocks = []
    for block in inline(node).split("\n\n"):
        lines = [" ".join(line.split()) for line in block.split("\n")]
        if lines and lines[0].startswith("- "):
            blocks.append("\n".join(line for line in lines if line))
        elif block.strip():
            blocks.append(" ".join(" ".join(lines).split()))
    return "\n\n".join(blocks)


def comment(node):
    return "\n\n".join(t for t in (text(node.find("briefdescription")),
                                   text(node.find("detaileddescription"))) if t)


def flat(node):
    """An element's text on one line, with Doxygen's `vector< T >` spacing undone."""
    if node is None:
        return ""
    s = " ".join("".join(node.itertext()).split())
    return re.sub(r"\s+>", ">", re.sub(r"<\s+", "<", s))


def template_prefix(node):
    params = node.find("templateparamlist")
    if params is None:
        return ""
    parts = []
    for p in params.findall("param"):
        s = flat(p.find("type"))
        if p.findtext("declname"):
            s += " " + p.findtext("declname")
        if p.find("defval") is not None:
            s += " = " + flat(p.find("defval"))
        parts.append(s)
    return "template <%s>\n" % ", ".join(parts)


def signature(m):
    kind, name = m.get("kind"), m.findtext("name")
    if kind == "define":
        params = [p.findtext("defname") for p in m.findall("param")]
        return "#define %s%s" % (name, "(%s)" % ", ".join(params) if m.find("param") is not None else "")
    if kind == "typedef":
        return template_prefix(m) + "using %s = %s" % (name, flat(m.find("type")))
    if kind == "enum":
        return "enum %s%s" % ("class " if m.get("strong") == "yes" else "", name)
    type_ = re.sub(r"^inline\s+", "", flat(m.find("type")))
    spec = ("static " if m.get("static") == "yes" and "static" not in type_ else "") + \
        ("constexpr " if m.get("constexpr") == "yes" and "constexpr" not in type_ else "")
    if kind == "variable":
        init = flat(m.find("initializer"))
        return "%s%s %s%s" % (spec, type_, name,
                              (" " + init if init.startswith("=") else init))
    kind_word = "explicit " if m.get("explicit") == "yes" else ""
    args = re.sub(r"\s+>", ">", re.sub(r"<\s+", "<", m.findtext("argsstring") or ""))
    args = re.sub(r"(\S)(override|final)$", r"\1 \2", args)
    args = re.sub(r"\s*(?<![=!<>])=(?!=)\s*", " = ", args)  # `kind=x` as `kind = x`
    return template_prefix(m) + "%s%s%s%s%s" % (spec, kind_word, type_ + " " if type_ else "",
                                               name, args)


class Reference:
    def __init__(self, xml_dir):
        self.xml_dir = xml_dir
        # header -> [(line, entry)]: an entry is a class's Markdown, or a namespace-scope
        # declaration or macro as (name, signature, comment, enum value lines).
        self.by_file = {}
        self.undocumented = []  # (file, line, what)
        self.headers = set()
        index = ET.parse(os.path.join(xml_dir, "index.xml")).getroot()
        for compound in index.findall("compound"):
            if compound.get("kind") == "namespace":
                name = compound.findtext("name")
                if name == "memlens" or (name.startswith("memlens::")
                                         and not name.startswith(PRIVATE_SCOPES)):
                    self.namespace(compound.get("refid"))
            elif compound.get("kind") == "file":
                self.file(compound.get("refid"))

    def load(self, refid):
        return ET.parse(os.path.join(self.xml_dir, refid + ".xml")).getroot().find("compounddef")

    def note_missing(self, node, what):
        loc = node.find("location")
        self.undocumented.append(("include/" + loc.get("file"), int(loc.get("line")), what))

    def add(self, node, entry):
        loc = node.find("location")
        self.by_file.setdefault(loc.get("file"), []).append((int(loc.get("line")), entry))

    def entry(self, m, qualified):
        """A namespace-scope declaration or macro: (name, signature, comment, enum values)."""
        doc = comment(m)
        if not doc:
            self.note_missing(m, "%s %s" % (m.get("kind"), qualified))
        values = self.enum_values(m, qualified) if m.get("kind") == "enum" else []
        return (qualified, signature(m), doc, values)

    def enum_values(self, m, qualified):
        lines = []
        for value in m.findall("enumvalue"):
            doc = comment(value)
            if not doc:
                self.note_missing(m, "enum value %s::%s" % (qualified, value.findtext("name")))
            init = flat(value.find("initializer"))
            lines.append("- `%s%s`%s" % (value.findtext("name"), " " + init if init else "",
                                         " — " + doc.replace("\n\n", " ") if doc else ""))
        return lines + [""] if lines else []

    def namespace(self, refid):
        ns = self.load(refid)
        for m in ns.iter("memberdef"):
            if m.get("prot") == "public":
                self.add(m, self.entry(m, m.findtext("qualifiedname")))
        for inner in ns.findall("innerclass"):
            if inner.get("prot") == "public":
                cls = self.load(inner.get("refid"))
                self.add(cls, self.klass(cls, 3))

    def klass(self, cls, level):
        name = re.sub(r"<\s*(.*?)\s*>$", r"<\1>", cls.findtext("compoundname"))
        doc = comment(cls)
        if not doc:
            self.note_missing(cls, "%s %s" % (cls.get("kind"), name))
        bases = [flat(b) for b in cls.findall("basecompoundref") if b.get("prot") == "public"]
        decl = template_prefix(cls) + "%s %s%s" % (cls.get("kind"), name,
                                                   " : public " + ", ".join(bases) if bases else "")
        lines = ["#" * level + " `%s`" % name, "", "```cpp", decl, "```", ""]
        if doc:
            lines += [doc, ""]
        members = []
        for section in cls.findall("sectiondef"):
            if not section.get("kind").startswith(("public", "user-defined")):
                continue
            for m in section.findall("memberdef"):
                if m.get("prot") != "public" or (m.findtext("argsstring") or "").endswith("=delete"):
                    continue
                members.append((int(m.find("location").get("line")), m))
        for inner in cls.findall("innerclass"):
            if inner.get("prot") == "public":
                nested = self.load(inner.get("refid"))
                members.append((1 << 30, nested))  # after the members
        rows = []  # [signatures, comment, enum values]
        for _, m in sorted(members, key=lambda pair: pair[0]):
            if m.tag == "compounddef":
                rows.append([None, self.klass(m, level + 1), []])
                continue
            doc = comment(m).replace("\n\n", " ")
            short = m.findtext("name")
            if not doc and short.startswith("~"):
                continue
            if not doc and not exempt(m):
                self.note_missing(m, "%s %s::%s" % (m.get("kind"), name, short))
            values = self.enum_values(m, name + "::" + short) if m.get("kind") == "enum" else []
            sig = " ".join(signature(m).split())
            if rows and rows[-1][0] and doc and rows[-1][1] == doc and not values:
                rows[-1][0].append(sig)
            else:
                rows.append([[sig], doc, values])
        for sigs, doc, values in rows:
            if sigs is None:
                lines += ["", doc.rstrip(), ""]
            elif len(sigs) == 1:
                lines.append("- `%s`%s" % (sigs[0], " — " + doc if doc else ""))
            else:
                lines += ["- %s" % doc, "  ```cpp"] + ["  " + sig for sig in sigs] + ["  ```"]
            lines += ["  " + v for v in values if v]
        return "\n".join(lines).rstrip() + "\n"

    def file(self, refid):
        f = self.load(refid)
        path = f.find("location").get("file")
        if not path.startswith("memlens/"):
            return
        self.headers.add(path)
        for m in f.iter("memberdef"):
            name = m.findtext("name")
            if m.get("kind") == "define" and not name.startswith("MEMLENS_DETAIL_") \
                    and name not in INTERNAL_MACROS:
                self.add(m, self.entry(m, m.findtext("name")))

    def markdown(self):
        def order(path):
            parts = path.split("/")
            layer = parts[1] if len(parts) > 2 else ""
            front = FRONT_DOORS.index(path) if path in FRONT_DOORS else 0
            return (LAYERS.index(layer) if layer in LAYERS else len(LAYERS), front, path)

        out = ["# memlens API reference", "",
               "Generated by `tools/api_reference.py` from the comments in the public headers; "
               "do not edit by hand. To regenerate: %s." % REGENERATE, "",
               "Everything is in namespace `memlens` (an inline namespace named after the version "
               "and the layout options sits between, and is left out here).", ""]
        headers = sorted(self.headers, key=order)
        out += ["- [`<%s>`](#%s)" % (h, re.sub(r"[^a-z0-9_ -]", "", ("%s" % h).lower()))
                for h in headers]
        out.append("")
        for h in headers:
            out += ["## %s" % h, "", "[`include/%s`](../include/%s)" % (h, h)]
            intro = file_intro(os.path.join(ROOT, "include", h))
            if intro:
                out += ["", intro]
            out.append("")
            entries = sorted(self.by_file.get(h, []), key=lambda pair: pair[0])
            if not entries:
                out += ["No public declarations of its own.", ""]
            # Consecutive declarations with one comment (a Doxygen member group, such as a
            # REQUIRE / CHECK pair of macros) share one heading.
            groups = []
            for _, item in entries:
                if isinstance(item, str):
                    groups.append(item)
                elif groups and isinstance(groups[-1], list) and item[2] \
                        and groups[-1][-1][2] == item[2] and not item[3]:
                    groups[-1].append(item)
                else:
                    groups.append([item])
            for group in groups:
                if isinstance(group, str):
                    out += [group.rstrip(), ""]
                    continue
                out += ["### " + ", ".join("`%s`" % g[0] for g in group), "", "```cpp"]
                out += [g[1] for g in group] + ["```", ""]
                if group[0][2]:
                    out += [group[0][2], ""]
                if group[0][3]:
                    out += group[0][3]
        return "\n".join(out).rstrip() + "\n"


def exempt(m):
    """Members whose meaning the class comment gives: destructors and default constructors."""
    name, args = m.findtext("name"), m.findtext("argsstring") or ""
    if m.get("kind") != "function":
        return False
    constructor = not flat(m.find("type")) and not name.startswith("operator")
    return name.startswith("~") or (constructor and args.startswith("()"))


def file_intro(path):
    """The first paragraph of the file's header comment, without its leading "memlens/x.hpp:"."""
    lines = []
    with open(path, encoding="utf-8") as source:
        for line in source:
            if not line.startswith("//") or not line[2:].strip():
                break
            lines.append(line[2:].strip())
    intro = " ".join(lines)
    intro = re.sub(r"^memlens/\S+\.hpp:\s*", "", intro)
    return intro[:1].upper() + intro[1:] if re.match(r"[a-z]+\b", intro) else intro


def run_doxygen(doxygen, out_dir):
    env = dict(os.environ, MEMLENS_DOCS_DIR=out_dir)
    try:
        result = subprocess.run([doxygen, os.path.join("docs", "Doxyfile")], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                universal_newlines=True)
    except OSError as e:
        sys.exit("api_reference: cannot run %s (%s): install doxygen (Debian: doxygen)" % (doxygen, e))
    if result.returncode != 0:
        sys.exit("api_reference: doxygen failed:\n" + result.stdout)
    warnings = []
    with open(os.path.join(out_dir, "warnings.log"), encoding="utf-8") as log:
        for line in log:
            line = line.rstrip()
            if line:
                warnings.append(line.replace(ROOT + "/", ""))
    return warnings


def problems(warnings, reference):
    """Doxygen's warnings, then the undocumented declarations it did not warn about."""
    seen = set()
    listed = []
    for w in warnings:
        match = re.match(r"(\S+?):(\d+): (.*)", w)
        key = (match.group(1), int(match.group(2))) if match else None
        if key is not None and key in seen:
            continue  # Doxygen names some members twice
        seen.add(key)
        listed.append((key or ("", 0), w))
    for path, line, what in reference.undocumented:
        if (path, line) not in seen:
            seen.add((path, line))
            listed.append(((path, line), "%s:%d: warning: %s has no comment" % (path, line, what)))
    return [w for _, w in sorted(listed, key=lambda pair: pair[0])]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite docs/reference.md")
    mode.add_argument("--check", action="store_true",
                      help="fail on undocumented declarations or a stale docs/reference.md")
    parser.add_argument("--doxygen", default="doxygen", help="the doxygen program")
    parser.add_argument("--output-dir", help="where Doxygen writes (default: a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="memlens-docs-") as scratch:
        out_dir = os.path.abspath(args.output_dir or scratch)
        os.makedirs(out_dir, exist_ok=True)
        warnings = run_doxygen(args.doxygen, out_dir)
        reference = Reference(os.path.join(out_dir, "xml"))
        text_now = reference.markdown()
    listed = problems(warnings, reference)

    try:
        with open(REFERENCE, encoding="utf-8") as f:
            committed = f.read()
    except FileNotFoundError:
        committed = ""
    update = args.write or os.environ.get("MEMLENS_UPDATE_GOLDEN") == "1"
    stale = committed != text_now
    if stale and update:
        with open(REFERENCE, "w", encoding="utf-8") as f:
            f.write(text_now)
        print("api_reference: wrote docs/reference.md")
        stale = False

    failed = False
    if listed:
        print("api_reference: %d public declaration(s) without a comment or with a broken one:"
              % len(listed))
        print("\n".join(listed))
        failed = True
    if stale:
        diff = difflib.unified_diff(committed.splitlines(), text_now.splitlines(),
                                    "docs/reference.md (committed)", "docs/reference.md (now)",
                                    lineterm="", n=1)
        print("\n".join(list(diff)[:60]))
        print("api_reference: docs/reference.md is out of date with the headers' comments; "
              "regenerate it with %s, or run the test with MEMLENS_UPDATE_GOLDEN=1, then review "
              "and commit it" % REGENERATE)
        failed = True
    if args.check and failed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
