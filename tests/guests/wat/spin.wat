;; Spins until the sandbox stops it (fuel or the wall clock), on every ticket.
;; @route
(loop $forever (br $forever))
