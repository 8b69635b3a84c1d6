package roomstate

import (
	"fmt"
	"maps"
	"slices"
)

// Capability is a MIMI role capability (draft-ietf-mimi-room-policy-03,
// Section 8 and the registry in Section 10.2). Values in 0xF000-0xFFFF are
// the registry's private-use range; Rhizome uses two of them.
type Capability uint16

// Membership capabilities (room-policy Section 8.1).
const (
	CanAddParticipant      Capability = 0x0000
	CanRemoveParticipant   Capability = 0x0001
	CanAddOwnClient        Capability = 0x0002
	CanRemoveOwnClient     Capability = 0x0003
	CanOpenJoin            Capability = 0x0004
	CanJoinIfPreauthorized Capability = 0x0005
	CanRemoveSelf          Capability = 0x0006
	CanUseJoinCode         Capability = 0x0009
	CanBan                 Capability = 0x000a
	CanUnBan               Capability = 0x000b
	CanKick                Capability = 0x000c
	CanChangeUserRole      Capability = 0x000f
	CanChangeOwnRole       Capability = 0x0010
)

// Message capabilities (room-policy Section 8.3). Only CanSendMessage and
// CanReceiveMessage can be enforced by servers; clients enforce the rest.
const (
	CanSendMessage         Capability = 0x0100
	CanReceiveMessage      Capability = 0x0101
	CanCopyMessage         Capability = 0x0102
	CanReportAbuse         Capability = 0x0103
	CanReplyToMessage      Capability = 0x0104
	CanReactToMessage      Capability = 0x0105
	CanEditReaction        Capability = 0x0106
	CanDeleteOwnReaction   Capability = 0x0107
	CanDeleteOtherReaction Capability = 0x0108
	CanEditOwnMessage      Capability = 0x0109
	CanDeleteOwnMessage    Capability = 0x010a
	CanDeleteOtherMessage  Capability = 0x010b
	CanStartTopic          Capability = 0x010c
	CanReplyInTopic        Capability = 0x010d
	CanEditOwnTopic        Capability = 0x010e
	CanEditOtherTopic      Capability = 0x010f
)

// Asset and link capabilities (room-policy Sections 8.3 and 8.4).
const (
	CanUploadImage        Capability = 0x0200
	CanUploadAudio        Capability = 0x0201
	CanUploadVideo        Capability = 0x0202
	CanUploadAttachment   Capability = 0x0203
	CanDownloadImage      Capability = 0x0204
	CanDownloadAudio      Capability = 0x0205
	CanDownloadVideo      Capability = 0x0206
	CanDownloadAttachment Capability = 0x0207
	CanSendLink           Capability = 0x0208
	CanSendLinkPreview    Capability = 0x0209
	CanFollowLink         Capability = 0x020a
	CanCopyLink           Capability = 0x020b
)

// Metadata capabilities (room-policy Section 8.2).
const (
	CanChangeRoomName        Capability = 0x0300
	CanChangeRoomDescription Capability = 0x0301
	CanChangeRoomAvatar      Capability = 0x0302
	CanChangeRoomSubject     Capability = 0x0303
	CanChangeRoomMood        Capability = 0x0304
)

// Disruptive and MLS capabilities (room-policy Sections 8.6 and 10.2).
const (
	CanDestroyRoom                 Capability = 0x0501
	CanChangeRoomMembershipStyle   Capability = 0x0502
	CanChangeRoleDefinitions       Capability = 0x0503
	CanChangePreauthorizedUserList Capability = 0x0504
	CanSendMLSReinitProposal       Capability = 0x0601
)

// Rhizome private-use capabilities (room-policy Section 10.2 reserves
// 0xF000-0xFFFF for private use). The drafts have a single hub owned by one
// provider; Rhizome rooms are hosted by a set of servers, which someone must
// be allowed to change.
const (
	// CanChangeServers authorizes adding and removing participating servers
	// (the servers component). Removing only vacated servers (no listed
	// user on their domain) needs no capability.
	CanChangeServers Capability = 0xF000
	// CanChangeHubCandidates authorizes reordering the hub-candidate list.
	CanChangeHubCandidates Capability = 0xF001
)

var capabilityNames = map[Capability]string{
	CanAddParticipant:              "canAddParticipant",
	CanRemoveParticipant:           "canRemoveParticipant",
	CanAddOwnClient:                "canAddOwnClient",
	CanRemoveOwnClient:             "canRemoveOwnClient",
	CanOpenJoin:                    "canOpenJoin",
	CanJoinIfPreauthorized:         "canJoinIfPreauthorized",
	CanRemoveSelf:                  "canRemoveSelf",
	CanUseJoinCode:                 "canUseJoinCode",
	CanBan:                         "canBan",
	CanUnBan:                       "canUnBan",
	CanKick:                        "canKick",
	CanChangeUserRole:              "canChangeUserRole",
	CanChangeOwnRole:               "canChangeOwnRole",
	CanSendMessage:                 "canSendMessage",
	CanReceiveMessage:              "canReceiveMessage",
	CanCopyMessage:                 "canCopyMessage",
	CanReportAbuse:                 "canReportAbuse",
	CanReplyToMessage:              "canReplyToMessage",
	CanReactToMessage:              "canReactToMessage",
	CanEditReaction:                "canEditReaction",
	CanDeleteOwnReaction:           "canDeleteOwnReaction",
	CanDeleteOtherReaction:         "canDeleteOtherReaction",
	CanEditOwnMessage:              "canEditOwnMessage",
	CanDeleteOwnMessage:            "canDeleteOwnMessage",
	CanDeleteOtherMessage:          "canDeleteOtherMessage",
	CanStartTopic:                  "canStartTopic",
	CanReplyInTopic:                "canReplyInTopic",
	CanEditOwnTopic:                "canEditOwnTopic",
	CanEditOtherTopic:              "canEditOtherTopic",
	CanUploadImage:                 "canUploadImage",
	CanUploadAudio:                 "canUploadAudio",
	CanUploadVideo:                 "canUploadVideo",
	CanUploadAttachment:            "canUploadAttachment",
	CanDownloadImage:               "canDownloadImage",
	CanDownloadAudio:               "canDownloadAudio",
	CanDownloadVideo:               "canDownloadVideo",
	CanDownloadAttachment:          "canDownloadAttachment",
	CanSendLink:                    "canSendLink",
	CanSendLinkPreview:             "canSendLinkPreview",
	CanFollowLink:                  "canFollowLink",
	CanCopyLink:                    "canCopyLink",
	CanChangeRoomName:              "canChangeRoomName",
	CanChangeRoomDescription:       "canChangeRoomDescription",
	CanChangeRoomAvatar:            "canChangeRoomAvatar",
	CanChangeRoomSubject:           "canChangeRoomSubject",
	CanChangeRoomMood:              "canChangeRoomMood",
	CanDestroyRoom:                 "canDestroyRoom",
	CanChangeRoomMembershipStyle:   "canChangeRoomMembershipStyle",
	CanChangeRoleDefinitions:       "canChangeRoleDefinitions",
	CanChangePreauthorizedUserList: "canChangePreauthorizedUserList",
	CanSendMLSReinitProposal:       "canSendMLSReinitProposal",
	CanChangeServers:               "canChangeServers",
	CanChangeHubCandidates:         "canChangeHubCandidates",
}

// String returns the registry name, e.g. "canKick", or the hex value for a
// capability this package does not name.
func (c Capability) String() string {
	if n, ok := capabilityNames[c]; ok {
		return n
	}
	return fmt.Sprintf("capability(0x%04x)", uint16(c))
}

// ParseCapability returns the capability with registry name s.
func ParseCapability(s string) (Capability, bool) {
	for _, c := range slices.Sorted(maps.Keys(capabilityNames)) {
		if capabilityNames[c] == s {
			return c, true
		}
	}
	return 0, false
}
