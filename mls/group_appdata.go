package mls

import (
	"bytes"
	"slices"
)

// The app_data_dictionary GroupContext extension and AppDataUpdate
// proposals (draft-ietf-mls-extensions, "AppDataUpdate").

// AppData returns the group's app_data_dictionary (empty if the group has
// none).
func (g *Group) AppData() (*AppDataDictionary, error) {
	e, ok := g.ctx.Extensions.Find(ExtensionTypeAppDataDictionary)
	if !ok {
		return &AppDataDictionary{}, nil
	}
	return UnmarshalAppDataDictionary(e.ExtensionData)
}

// applyAppData applies the AppDataUpdate proposals of a commit to the
// app_data_dictionary of exts, in order, and returns the new extensions.
// For each component the list must hold a single remove (of present
// state) or one or more updates.
func (p *groupPolicy) applyAppData(exts Extensions, ups []*AppDataUpdateProposal) (Extensions, error) {
	bad := func(format string, args ...any) error {
		return groupErrf("app data update", ErrInvalidProposal, format, args...)
	}
	dict := &AppDataDictionary{}
	i := slices.IndexFunc(exts, func(e Extension) bool { return e.ExtensionType == ExtensionTypeAppDataDictionary })
	if i >= 0 {
		var err error
		if dict, err = UnmarshalAppDataDictionary(exts[i].ExtensionData); err != nil {
			return nil, groupErr("app data update", err)
		}
	}
	ops := map[ComponentID]AppDataUpdateOperation{}
	for _, u := range ups {
		if prev, seen := ops[u.ComponentID]; seen && (prev == AppDataUpdateOperationRemove || u.Op == AppDataUpdateOperationRemove) {
			return nil, bad("component %d: a remove together with another operation", u.ComponentID)
		}
		ops[u.ComponentID] = u.Op
		if p.knownComponents != nil && !slices.Contains(p.knownComponents, u.ComponentID) {
			return nil, bad("unknown component %d", u.ComponentID)
		}
		j, found := slices.BinarySearchFunc(dict.ComponentData, u.ComponentID, func(c ComponentData, id ComponentID) int {
			switch {
			case c.ComponentID < id:
				return -1
			case c.ComponentID > id:
				return 1
			}
			return 0
		})
		switch u.Op {
		case AppDataUpdateOperationRemove:
			if !found {
				return nil, bad("remove of component %d, which has no state", u.ComponentID)
			}
			dict.ComponentData = slices.Delete(slices.Clone(dict.ComponentData), j, j+1)
		case AppDataUpdateOperationUpdate:
			var cur []byte
			if found {
				cur = dict.ComponentData[j].Data
			}
			next := slices.Clone(u.Update)
			if p.appData != nil {
				var err error
				if next, err = p.appData(u.ComponentID, cur, found, u.Update); err != nil {
					return nil, groupErr("app data update", err)
				}
			}
			cd := slices.Clone(dict.ComponentData)
			if found {
				cd[j] = ComponentData{ComponentID: u.ComponentID, Data: next}
			} else {
				cd = slices.Insert(cd, j, ComponentData{ComponentID: u.ComponentID, Data: next})
			}
			dict.ComponentData = cd
		default:
			return nil, bad("operation %d", u.Op)
		}
	}
	data, err := dict.Marshal()
	if err != nil {
		return nil, err
	}
	out := slices.Clone(exts)
	e := Extension{ExtensionType: ExtensionTypeAppDataDictionary, ExtensionData: data}
	if i >= 0 {
		out[i] = e
	} else {
		out = append(out, e)
	}
	return out, nil
}

// checkGCEAppData enforces the draft's rule that when every member must
// support AppDataUpdate (it is in required_capabilities), a
// GroupContextExtensions proposal leaves app_data_dictionary unchanged;
// and that a proposal list does not both replace and update it.
func (s *publicState) checkGCEAppData(gce *GroupContextExtensionsProposal, withUpdates bool) error {
	oldE, hadOld := s.ctx.Extensions.Find(ExtensionTypeAppDataDictionary)
	newE, hasNew := gce.Extensions.Find(ExtensionTypeAppDataDictionary)
	changed := hadOld != hasNew || !bytes.Equal(oldE.ExtensionData, newE.ExtensionData)
	if !changed {
		return nil
	}
	if withUpdates {
		return groupErrf("group context extensions", ErrInvalidProposal, "app_data_dictionary replaced and updated in one commit")
	}
	rc, err := requiredCapabilities(s.ctx.Extensions)
	if err != nil {
		return groupErr("group context extensions", err)
	}
	if rc != nil && slices.Contains(rc.ProposalTypes, ProposalTypeAppDataUpdate) {
		return groupErrf("group context extensions", ErrInvalidProposal, "app_data_dictionary changed by GroupContextExtensions while AppDataUpdate is required")
	}
	return nil
}
