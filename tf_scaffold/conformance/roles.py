"""The pieces of a repo the engines use, found from `auto_map`, `architectures` and the class structure: the config
class, the head, the base model the engines build, the decoder, its layers and their attention modules, the
processor. And how a forward reaches the attention interface (`ALL_ATTENTION_FUNCTIONS`)."""

from __future__ import annotations

import ast
from functools import cached_property

from tf_scaffold.conformance import astutil
from tf_scaffold.conformance.classes import ClassRef
from tf_scaffold.conformance.files import Source, as_dict, auto_map_target, split_target
from tf_scaffold.facts import HEAD_AUTO_CLASSES

INTERFACE_NAMES = ("ALL_ATTENTION_FUNCTIONS",)


class Roles:
    """What each class of the repo is to the engines."""

    @cached_property
    def config_class(self) -> ClassRef | None:
        name = self.auto_class("AutoConfig")
        return self.find(name) if name else None

    @cached_property
    def sub_config_classes(self) -> dict[str, ClassRef]:
        """{"text_config": class, ...} from the composite config class's `sub_configs` literal."""
        node, owner = self.class_attr(self.config_class, "sub_configs")
        out = {}
        if isinstance(node, ast.Dict) and owner is not None:
            for key, value in zip(node.keys, node.values, strict=False):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    ref = self.resolve(owner.source, value)
                    if ref is not None:
                        out[key.value] = ref
        return out

    @cached_property
    def text_config_class(self) -> ClassRef | None:
        return self.sub_config_classes.get("text_config") or self.config_class

    @cached_property
    def head(self) -> ClassRef | None:
        """The head class (`*ForCausalLM` ...): from auto_map's head entry, else architectures[0]. An architecture that
        is auto_map's AutoModel is the base model itself (an embedding model's), not a head."""
        base = self.auto_class("AutoModel")
        architectures = [a for a in self.architectures if a != base]
        for name in [*(self.auto_class(k) for k in HEAD_AUTO_CLASSES), *architectures]:
            if name and (ref := self.find(name)) is not None:
                return ref
        return None

    def _inner_model(self, ref: ClassRef | None) -> ClassRef | None:
        """What a head class wraps: its `self.<base_model_prefix>` (default `model`) submodule."""
        prefix_node, _ = self.class_attr(ref, "base_model_prefix")
        prefix = astutil.literal(prefix_node) if prefix_node is not None else "model"
        child = self.children(ref).get(prefix if isinstance(prefix, str) else "model")
        return child if isinstance(child, ClassRef) else None

    @cached_property
    def auto_model(self) -> ClassRef | None:
        """The class `auto_map["AutoModel"]` names, when the repo defines it."""
        name = self.auto_class("AutoModel")
        return self.find(name) if name else None

    @cached_property
    def base_model(self) -> ClassRef | None:
        """The class the engines build: `AutoModel`'s, or, when that is missing or names the head, what the head
        wraps."""
        if self.auto_model is not None and self.auto_model != self.head:
            return self.auto_model
        inner = self._inner_model(self.head)
        if inner is not None:
            return inner
        return self.auto_model

    @cached_property
    def decoder(self) -> ClassRef | None:
        """The decoder stack: the base model itself, or its `language_model` in a composite model."""
        child = self.children(self.base_model).get("language_model")
        return child if isinstance(child, ClassRef) else self.base_model

    def _layers_in(self, ref: ClassRef | None) -> tuple[str, ClassRef] | None:
        """(attribute, layer class) of a class's ModuleList of layers: the list whose elements hold attention."""
        lists = self.module_lists(ref)
        for attr, elements in lists.items():
            for element in elements:
                if self.attention_children(element):
                    return attr, element
        for attr, elements in lists.items():
            if elements:
                return attr, elements[0]
        return None

    @cached_property
    def _layers(self) -> tuple[ClassRef, str, ClassRef] | None:
        """(the class holding the list, its path from the decoder, layer class). A decoder holds its list itself; an
        encoder may keep it one module down (BERT's `encoder.layer`)."""
        found = self._layers_in(self.decoder)
        if found is not None:
            return self.decoder, *found
        if self.encoder:
            for attr, child in self.children(self.decoder).items():
                if isinstance(child, ClassRef) and (found := self._layers_in(child)) is not None:
                    return child, f"{attr}.{found[0]}", found[1]
        return None

    @cached_property
    def layer_list(self) -> tuple[str, ClassRef] | None:
        """(path from the decoder, layer class) of the ModuleList of layers (`layers`, or an encoder's
        `encoder.layer`)."""
        return self._layers[1:] if self._layers else None

    @cached_property
    def layer_owner(self) -> ClassRef | None:
        """The class whose nn.ModuleList holds the layers: the decoder, or the module under it that holds them."""
        return self._layers[0] if self._layers else None

    @cached_property
    def layer(self) -> ClassRef | None:
        return self.layer_list[1] if self.layer_list else None

    def dispatches(self, ref: ClassRef | None) -> bool:
        """Whether a class's forward looks attention up in the interface (any name it is known by)."""
        forward, owner = self.method(ref, "forward")
        return forward is not None and bool(interface_lookups(owner.source, forward))

    def attention_children(self, ref: ClassRef | None) -> dict[str, ClassRef]:
        """{attr: class} of a layer's attention submodules (dispatching through the interface, or named
        `*Attention`), one level down too (`self.attention.self`)."""
        out = {}
        for attr, child in self.children(ref).items():
            if not isinstance(child, ClassRef):
                continue
            if self.dispatches(child):
                out[attr] = child
                continue
            subs = {a: s for a, s in self.children(child).items() if isinstance(s, ClassRef)}
            # a wrapper named *Attention around the module that dispatches (BERT's `attention.self`): the inner one
            inner = {f"{attr}.{a}": s for a, s in subs.items() if self.dispatches(s)}
            if inner:
                out.update(inner)
            elif child.name.endswith(("Attention", "SelfAttention")):
                out[attr] = child
            else:
                out.update({f"{attr}.{a}": s for a, s in subs.items() if s.name.endswith("Attention")})
        return out

    @cached_property
    def decoder_attention(self) -> list[ClassRef]:
        """The attention classes of the decoder layers: the modules the engines route to their paged attention."""
        return list(dict.fromkeys(self.attention_children(self.layer).values())) if self.layer else []

    @cached_property
    def other_attention(self) -> list[ClassRef]:
        """Attention classes of the repo outside the decoder (a vision or audio tower's)."""
        out = []
        for source in self.sources.values():
            for name in source.class_lines:
                ref = self.find(name)
                if ref is None or ref in self.decoder_attention:
                    continue
                if name.endswith("Attention") or self.dispatches(ref):
                    if astutil.method(ref.node, "forward") is not None:
                        out.append(ref)
        return out

    @cached_property
    def processor_class(self) -> ClassRef | None:
        auto_map = as_dict((self.processor_config or {}).get("auto_map")) or self.auto_map
        target = auto_map_target(auto_map.get("AutoProcessor"))
        parts = split_target(target) if target else None
        return self.find(parts[1]) if parts else None


def interface_lookups(source: Source, func: ast.FunctionDef) -> dict[str, ast.AST]:
    """{local variable: assignment} of the variables a function assigns from the attention interface:
    `ALL_ATTENTION_FUNCTIONS.get_interface(...)` or `[...]`, under whatever name the module imports it."""
    names = interface_names(source)
    out: dict[str, ast.AST] = {}
    for node in ast.walk(func):
        targets = astutil.assigned(node)
        if targets and is_interface_lookup(node.value, names):
            for target in targets:
                if isinstance(target, ast.Name):
                    out[target.id] = node
    return out


def interface_names(source: Source) -> set[str]:
    """Local names that are `ALL_ATTENTION_FUNCTIONS` in a module (imported under another name, or aliased)."""
    names = {n for n, (_, attr, _) in source.imports.items() if attr in INTERFACE_NAMES} | set(INTERFACE_NAMES)
    names |= {a for a, b in source.aliases.items() if b in names}
    return names


def is_interface_lookup(node: ast.AST | None, names: set[str]) -> bool:
    """`X.get_interface(...)`, `X[...]` or `X.get(...)` where X is the interface (or `module.X`)."""
    if isinstance(node, ast.Call):
        node = node.func
    if not isinstance(node, ast.Attribute | ast.Subscript):
        return False
    base = node.value
    if isinstance(base, ast.Name):
        return base.id in names
    return isinstance(base, ast.Attribute) and base.attr in INTERFACE_NAMES


def literal_interface_name(node: ast.AST | None) -> bool:
    """vLLM's own test: the lookup's base is the bare name `ALL_ATTENTION_FUNCTIONS` (no alias, no module)."""
    if isinstance(node, ast.Call):
        node = node.func
    return (
        isinstance(node, ast.Attribute | ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id in INTERFACE_NAMES
    )
