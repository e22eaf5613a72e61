#!/usr/bin/perl
# Times Lingua::EN::Tagger->add_tags (its own tokenizer and tagger) on the
# caption lines of STDIN; prints 'captions_per_s <x>'.
use strict;
use warnings;
use Lingua::EN::Tagger;
use Time::HiRes qw(time);
binmode(STDIN, ':utf8');
my $p = Lingua::EN::Tagger->new(stem => 0);
my @lines = map { chomp; lc } <STDIN>;
$p->add_tags("warm up");
my $t0 = time;
for my $c (@lines) { $p->add_tags($c) if length $c; }
my $dt = time - $t0;
printf "captions_per_s %.1f\n", scalar(@lines) / $dt;
