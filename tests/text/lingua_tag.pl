#!/usr/bin/perl
# Tags pre-tokenized lines (tokens separated by tabs) with Lingua::EN::Tagger's
# own model and decoder: per line, state reset to 'pp', then for each token
# _assign_tag(previous tag, _clean_word(token)), as add_tags does after its
# own tokenization. Prints the tags (Lingua's names), tab-separated.
use strict;
use warnings;
use Lingua::EN::Tagger;
binmode(STDIN, ':utf8');
binmode(STDOUT, ':utf8');
my $p = Lingua::EN::Tagger->new(stem => 0);
while (my $line = <STDIN>) {
  chomp $line;
  my @toks = length($line) ? split(/\t/, $line, -1) : ();
  my $t = 'pp';
  my @tags;
  for my $w (@toks) {
    $t = $p->_assign_tag($t, $p->_clean_word($w)) || 'nn';
    push @tags, $t;
  }
  print join("\t", @tags), "\n";
}
