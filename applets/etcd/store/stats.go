package store

// The counters of Stats, in the order of the snapshot encoding.
const (
	getsSuccess = iota
	getsFail
	setsSuccess
	setsFail
	deleteSuccess
	deleteFail
	updateSuccess
	updateFail
	createSuccess
	createFail
	compareAndSwapSuccess
	compareAndSwapFail
	compareAndDeleteSuccess
	compareAndDeleteFail
	expireCount
	numCounters
)

// Stats is etcd's /v2/stats/store. The counters count operations on this
// member (gets here, writes as applied) and travel in snapshots, as in
// etcd; Watchers is the number of watchers waiting now.
type Stats struct {
	GetsSuccess             uint64 `json:"getsSuccess"`
	GetsFail                uint64 `json:"getsFail"`
	SetsSuccess             uint64 `json:"setsSuccess"`
	SetsFail                uint64 `json:"setsFail"`
	DeleteSuccess           uint64 `json:"deleteSuccess"`
	DeleteFail              uint64 `json:"deleteFail"`
	UpdateSuccess           uint64 `json:"updateSuccess"`
	UpdateFail              uint64 `json:"updateFail"`
	CreateSuccess           uint64 `json:"createSuccess"`
	CreateFail              uint64 `json:"createFail"`
	CompareAndSwapSuccess   uint64 `json:"compareAndSwapSuccess"`
	CompareAndSwapFail      uint64 `json:"compareAndSwapFail"`
	CompareAndDeleteSuccess uint64 `json:"compareAndDeleteSuccess"`
	CompareAndDeleteFail    uint64 `json:"compareAndDeleteFail"`
	ExpireCount             uint64 `json:"expireCount"`
	Watchers                uint64 `json:"watchers"`
}

// Stats returns the current counters.
func (s *Store) Stats() Stats {
	var c [numCounters]uint64
	for i := range c {
		c[i] = s.stats[i].Load()
	}
	return Stats{
		GetsSuccess:             c[getsSuccess],
		GetsFail:                c[getsFail],
		SetsSuccess:             c[setsSuccess],
		SetsFail:                c[setsFail],
		DeleteSuccess:           c[deleteSuccess],
		DeleteFail:              c[deleteFail],
		UpdateSuccess:           c[updateSuccess],
		UpdateFail:              c[updateFail],
		CreateSuccess:           c[createSuccess],
		CreateFail:              c[createFail],
		CompareAndSwapSuccess:   c[compareAndSwapSuccess],
		CompareAndSwapFail:      c[compareAndSwapFail],
		CompareAndDeleteSuccess: c[compareAndDeleteSuccess],
		CompareAndDeleteFail:    c[compareAndDeleteFail],
		ExpireCount:             c[expireCount],
		Watchers:                uint64(s.hub.watchers()),
	}
}

func (s *Store) count(counter int) { s.stats[counter].Add(1) }

func (s *Store) countResult(err *Error, success, fail int) {
	if err != nil {
		s.count(fail)
		return
	}
	s.count(success)
}
