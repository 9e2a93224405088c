package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// A config is a few levels deep and uses aliases, if at all, to repeat a few lines. These
// bounds refuse what no hand-written config needs, before anything walks or decodes it.
const (
	// MaxDepth bounds how deeply a config nests (its own structure needs about 10 levels).
	MaxDepth = 64
	// MaxAliasNodes bounds how many nodes the aliases of a config expand to: a "billion
	// laughs" of nested aliases is a few hundred bytes in the file and unbounded once expanded.
	MaxAliasNodes = 10_000
)

// checkBounds reports, at its line, the first node nested deeper than MaxDepth or the alias at
// which the expansion of aliases passes MaxAliasNodes. It walks each node once, expanding
// nothing: the size of an alias's target is counted, not visited again.
func checkBounds(root *yaml.Node) error {
	b := &bounds{size: map[*yaml.Node]int{}}
	return b.walk(root, 1)
}

type bounds struct {
	size     map[*yaml.Node]int // a node's size with its aliases expanded, capped past the bound
	expanded int                // nodes the aliases seen so far expand to
}

func (b *bounds) walk(n *yaml.Node, depth int) error {
	if depth > MaxDepth {
		return &FieldError{Line: n.Line, Msg: fmt.Sprintf("nested deeper than %d levels", MaxDepth)}
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias != nil {
			b.expanded += b.sizeOf(n.Alias, 0)
		}
		if b.expanded > MaxAliasNodes {
			return &FieldError{Line: n.Line, Msg: fmt.Sprintf("aliases expand to more than %d nodes (nested aliases, a \"billion laughs\"?)", MaxAliasNodes)}
		}
		return nil
	}
	for _, c := range n.Content {
		if err := b.walk(c, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// sizeOf is n's node count with aliases expanded, capped at MaxAliasNodes+1 (which also ends a
// cycle, should the parser ever let one through).
func (b *bounds) sizeOf(n *yaml.Node, depth int) int {
	if s, ok := b.size[n]; ok {
		return s
	}
	if depth > MaxDepth*MaxDepth {
		return MaxAliasNodes + 1
	}
	b.size[n] = MaxAliasNodes + 1 // in progress: a node that contains itself is too big
	s := 1
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		s = b.sizeOf(n.Alias, depth+1)
	}
	for _, c := range n.Content {
		if s > MaxAliasNodes {
			break
		}
		s += b.sizeOf(c, depth+1)
	}
	s = min(s, MaxAliasNodes+1)
	b.size[n] = s
	return s
}
