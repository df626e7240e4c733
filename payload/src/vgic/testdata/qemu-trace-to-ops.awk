# QEMU GICv3 (gicv3_*) and GICv2 (gic_dist_*) trace events -> one vGIC replay operation per line
# rd|wr D|R<cpu> <offset> <size> <value>; bad D|R<cpu> <offset> <size> (QEMU refused it);
# sgi <sender affinity> <SGI> <IRM> <Aff3.Aff2.Aff1> <target list>.
/^gicv3_dist_read /     { print "rd D", $6, $10, $8; next }
/^gicv3_dist_write /    { print "wr D", $6, $10, $8; next }
/^gicv3_dist_badread /  { print "bad D", $6, $8; next }
/^gicv3_dist_badwrite / { print "badwr D", $6, $10, $8; next }
/^gicv3_redist_read /   { print "rd", "R" $4, $7, $11, $9; next }
/^gicv3_redist_write /  { print "wr", "R" $4, $7, $11, $9; next }
/^gicv3_redist_badread / { print "bad", "R" $4, $7, $9; next }
/^gicv3_icc_generate_sgi / { aff = $13; sub(/xx$/, "", aff); print "sgi", $5, $8, $10, aff, $15; next }
/^gic_dist_read /       { sz = $7; sub(/:$/, "", sz); print "rd D", $5, sz, $8; next }
/^gic_dist_write /      { sz = $7; sub(/:$/, "", sz); print "wr D", $5, sz, $8; next }
